/**
 * Event ids per open session, so a session alert can list everything the session did so far
 * (schema 2.0: triggering event first). Bounded both ways: at most `perSession` ids are kept
 * per session (the alert's `sessionEvents` still gives the true count) and at most
 * `sessions` sessions, the least recently active forgotten first.
 */
export class SessionEventIds {
  readonly #ids = new Map<string, string[]>();
  constructor(
    readonly perSession = 500,
    readonly sessions = 10_000,
  ) {}

  add(sessionId: string, eventId: string): void {
    let list = this.#ids.get(sessionId);
    if (list) this.#ids.delete(sessionId);
    else list = [];
    if (list.length < this.perSession && !list.includes(eventId)) list.push(eventId);
    this.#ids.set(sessionId, list);
    if (this.#ids.size > this.sessions) {
      const oldest = this.#ids.keys().next().value;
      if (oldest !== undefined) this.#ids.delete(oldest);
    }
  }

  /** The triggering event first, then the session's other events in arrival order. */
  forAlert(sessionId: string, triggering: string, also: readonly string[] = []): string[] {
    const rest = (this.#ids.get(sessionId) ?? []).filter((id) => id !== triggering);
    for (const id of also) if (id !== triggering && !rest.includes(id)) rest.unshift(id);
    return [triggering, ...rest];
  }
}
