/** What a client reports: connection changes and errors it recovered from (or could not). */
export interface ClientEventMap {
  connected: undefined;
  disconnected: { readonly code: number; readonly reason: string };
  error: Error;
}

/** A minimal typed emitter (browser-safe: no Node EventEmitter). */
export class TypedEvents<M extends object> {
  private readonly listeners = new Map<keyof M, Set<(payload: never) => void>>();

  /** Listens to `event`; returns the function that stops listening. */
  on<K extends keyof M>(event: K, listener: (payload: M[K]) => void): () => void {
    let set = this.listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(event, set);
    }
    const s = set;
    s.add(listener);
    return () => s.delete(listener);
  }

  protected emit<K extends keyof M>(event: K, payload: M[K]): void {
    const set = this.listeners.get(event) as Set<(payload: M[K]) => void> | undefined;
    if (set === undefined) return;
    for (const l of [...set]) {
      try {
        l(payload);
      } catch {
        // a listener's failure is its own business
      }
    }
  }
}

/** The events of the command-only clients of `connect()`. */
export class ClientEvents extends TypedEvents<ClientEventMap> {}
