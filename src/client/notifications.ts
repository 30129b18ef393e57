import type { NotificationMessage, TidingsClient } from "./client.js";

export interface ShowNotificationsOptions {
  /** Where toasts go. @default document.body */
  readonly container?: HTMLElement;
  /** How long a toast stays. @default 6000 */
  readonly toastMs?: number;
  /** Use the system Notification API when the page has permission. @default true */
  readonly system?: boolean;
}

/**
 * A browser helper: shows this user's `notify()` messages as system notifications when the
 * page has the Notification permission, otherwise as in-page toasts (elements with the class
 * `tidings-toast` inside a `tidings-toasts` box, styled by the page or by the defaults here).
 * Returns the function that stops showing them.
 */
export function showNotifications(client: TidingsClient, options: ShowNotificationsOptions = {}): () => void {
  const doc = (globalThis as { document?: Document }).document;
  if (doc === undefined) throw new Error("showNotifications needs a browser page (document).");
  return client.onNotification((n) => {
    const N = (globalThis as { Notification?: typeof Notification }).Notification;
    if (options.system !== false && N !== undefined && N.permission === "granted") {
      new N(n.title, { body: n.body, tag: n.message_id });
      return;
    }
    toast(doc, options, n);
  });
}

function toast(doc: Document, options: ShowNotificationsOptions, n: NotificationMessage): void {
  let box = doc.querySelector<HTMLElement>(".tidings-toasts");
  if (box === null) {
    box = doc.createElement("div");
    box.className = "tidings-toasts";
    box.setAttribute("role", "status");
    box.setAttribute("aria-live", "polite");
    Object.assign(box.style, { position: "fixed", top: "1rem", right: "1rem", display: "flex", flexDirection: "column", gap: "0.5rem", zIndex: "2147483647" });
    (options.container ?? doc.body).appendChild(box);
  }
  const el = doc.createElement("div");
  el.className = `tidings-toast tidings-priority-${n.priority}`;
  el.dataset.messageId = n.message_id;
  Object.assign(el.style, {
    background: n.priority >= 2 ? "#7a1f1f" : "#1f3a5f",
    color: "#fff",
    padding: "0.75rem 1rem",
    borderRadius: "6px",
    boxShadow: "0 2px 8px rgba(0,0,0,.3)",
    maxWidth: "22rem",
    font: "14px system-ui, sans-serif",
  });
  const title = doc.createElement("strong");
  title.textContent = n.title; // text, never HTML: a notification is plain text
  el.appendChild(title);
  if (n.body) {
    const body = doc.createElement("div");
    body.textContent = n.body;
    el.appendChild(body);
  }
  box.appendChild(el);
  setTimeout(() => el.remove(), options.toastMs ?? 6000);
}
