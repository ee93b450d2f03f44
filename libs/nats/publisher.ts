/**
 * Acknowledged JetStream publishes, many in flight over one reply
 * subscription. The client's `js.publish` makes a request object, a timer
 * and an Error (a stack capture) for every publish, and a TextDecoder for
 * every ack; on a map of 100,000 short tasks that was a sixth of the
 * coordinator's and the worker's CPU. Here a publish is one message with a
 * reply subject and one slot in a ring (waiting.ts); one timer fails the late ones.
 * Failures are the client's own error classes, so `isTransient` and the
 * fence check read them as they read the client's.
 */
import { createInbox, headers as newHeaders, NoRespondersError, PermissionViolationError, TimeoutError, type Msg, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { JetStreamApiError, PubHeaders, type PubAck } from "@nats-io/jetstream";
import { WaitingAcks } from "./waiting.ts";

export type PublishAckedOptions = {
  readonly headers?: MsgHdrs;
  /** JetStream drops a second message with this id inside the stream's duplicate window. */
  readonly msgId?: string;
  /** The append fails unless the subject's last sequence is this (0: no message yet). */
  readonly expectLastSubjectSeq?: number;
};

type Waiting = { readonly subject: string; readonly deadline: number; resolve(ack: PubAck): void; reject(err: Error): void };

/** How long an ack may take before the publish fails with a TimeoutError (as the client's default). */
const ACK_TIMEOUT_MS = 5000;
const text = new TextDecoder();

export class Publisher {
  /** Under the connection's inbox prefix: a role may listen only on its own (nats-roles.conf). */
  private readonly prefix: string;
  /** By token, in publish order, which is deadline order: the sweep stops at the first one not yet late. */
  private readonly waiting = new WaitingAcks<Waiting>();
  private readonly sweep: NodeJS.Timeout;

  constructor(private readonly nc: NatsConnection, inboxPrefix?: string) {
    this.prefix = `${createInbox(inboxPrefix)}.`;
    // An error here is the subscription's own (it closed): the sweep and the close handler fail what waits.
    nc.subscribe(`${this.prefix}*`, {
      callback: (err, msg) => {
        if (!err) this.settle(msg);
      },
    });
    this.sweep = setInterval(() => this.expire(), 250);
    this.sweep.unref();
    void this.failRefused();
    void nc.closed().then(() => {
      clearInterval(this.sweep);
      for (const waiting of this.waiting.takeExpired()) waiting.reject(new Error(`the connection closed before JetStream acknowledged a publish to ${waiting.subject}`));
    });
  }

  publish(subject: string, data: Uint8Array, options: PublishAckedOptions = {}): Promise<PubAck> {
    // No header block at all for a plain publish: it costs bytes and parsing on both ends.
    const needed = options.msgId !== undefined || options.expectLastSubjectSeq !== undefined;
    const h = options.headers ?? (needed ? newHeaders() : undefined);
    if (options.msgId) h!.set(PubHeaders.MsgIdHdr, options.msgId);
    if (options.expectLastSubjectSeq !== undefined) h!.set(PubHeaders.ExpectedLastSubjectSequenceHdr, String(options.expectLastSubjectSeq));
    return new Promise<PubAck>((resolve, reject) => {
      const token = this.waiting.add({ subject, deadline: Date.now() + ACK_TIMEOUT_MS, resolve, reject });
      try {
        this.nc.publish(subject, data, { reply: this.prefix + token.toString(36), headers: h });
      } catch (err) {
        this.waiting.take(token);
        reject(err as Error);
      }
    });
  }

  private settle(msg: Msg): void {
    const waiting = this.waiting.take(parseInt(msg.subject.slice(this.prefix.length), 36));
    if (!waiting) return; // already failed as late
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      waiting.reject(new NoRespondersError(waiting.subject));
      return;
    }
    let ack: PubAck & { error?: ConstructorParameters<typeof JetStreamApiError>[0] };
    try {
      ack = JSON.parse(text.decode(msg.data));
    } catch (err) {
      waiting.reject(new Error(`JetStream answered a publish to ${waiting.subject} with something that is not an ack: ${(err as Error).message}`));
      return;
    }
    if (ack.error) {
      waiting.reject(new JetStreamApiError(ack.error));
      return;
    }
    // Set on the parsed ack, not `{ ...ack, duplicate }`: V8 gives a spread copy that gets a property
    // a hidden class of its own, in old space (a few hundred bytes of garbage per publish).
    ack.duplicate ??= false;
    waiting.resolve(ack);
  }

  /**
   * A subject this user may not publish to gets no ack, only the server's
   * -ERR: fail what waits on it at once, with the server's reason, instead
   * of as a timeout that reads like a server gone quiet.
   */
  private async failRefused(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type !== "error" || !(status.error instanceof PermissionViolationError) || status.error.operation !== "publish") continue;
      const refused = status.error;
      for (const waiting of this.waiting.takeWhere((w) => w.subject === refused.subject)) waiting.reject(refused);
    }
  }

  private expire(): void {
    for (const waiting of this.waiting.takeExpired(Date.now())) waiting.reject(new TimeoutError());
  }

}
