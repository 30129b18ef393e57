/** What a client reports: connection changes and errors it recovered from (or could not). */
export interface ClientEventMap {
  connected: undefined;
  disconnected: { readonly code: number; readonly reason: string };
  error: Error;
}

type Listener<K extends keyof ClientEventMap> = (payload: ClientEventMap[K]) => void;

/** A minimal typed emitter (browser-safe: no Node EventEmitter). */
export class ClientEvents {
  private readonly listeners = new Map<keyof ClientEventMap, Set<(payload: never) => void>>();

  on<K extends keyof ClientEventMap>(event: K, listener: Listener<K>): () => void {
    let set = this.listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(event, set);
    }
    const s = set;
    s.add(listener);
    return () => s.delete(listener);
  }

  protected emit<K extends keyof ClientEventMap>(event: K, payload: ClientEventMap[K]): void {
    const set = this.listeners.get(event) as Set<Listener<K>> | undefined;
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
