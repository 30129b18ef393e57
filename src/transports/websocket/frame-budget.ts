/** How many frames a connection may send per second (ws.maxFramesPerSecond), counted in one-second windows. */
export class FrameBudget {
  private windowStart = 0;
  private count = 0;

  constructor(private readonly perSecond: number) {}

  /** Counts a frame received at `now`; false once the window's budget is spent. */
  take(now: number): boolean {
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.count = 0;
    }
    return ++this.count <= this.perSecond;
  }
}
