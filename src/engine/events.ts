/**
 * What happens in the engine, for whoever watches: lifecycle events in Docker's /events shape
 * (network create/connect/disconnect/destroy, container create/start/die/destroy), and one
 * record per operation with its duration and outcome (the metrics count those). The engine
 * emits; the API's event stream, the metrics and the topology page listen. A listener that
 * throws never reaches the operation that emitted.
 */
import { EventEmitter } from 'node:events';

export type EventType = 'network' | 'container';
export type EventAction = 'create' | 'connect' | 'disconnect' | 'destroy' | 'start' | 'die' | 'stop';

/** One event, as Docker's `GET /events` sends it (Type, Action, Actor, scope, time, timeNano). */
export interface BerthEvent {
  Type: EventType;
  Action: EventAction;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  time: number;
  timeNano: number;
}

/** One finished engine operation: `network create`, `container run`, … */
export interface OperationRecord {
  kind: string;
  ms: number;
  outcome: 'ok' | 'error';
}

/** How many past events a late subscriber can ask for (`--since`). */
const KEPT = 1024;

export class EngineEvents {
  private readonly emitter = new EventEmitter();
  private readonly recent: BerthEvent[] = [];

  constructor(private readonly onListenerError: (err: unknown) => void = () => undefined) {
    // Every API client streaming /events is a listener: many is normal, not a leak.
    this.emitter.setMaxListeners(0);
  }

  /** Records and sends an event; `attributes` are Docker's Actor.Attributes (name, type, container…). */
  emit(type: EventType, action: EventAction, id: string, attributes: Record<string, string>): BerthEvent {
    const nanos = BigInt(Date.now()) * 1_000_000n;
    const event: BerthEvent = {
      Type: type,
      Action: action,
      Actor: { ID: id, Attributes: attributes },
      scope: 'local',
      time: Number(nanos / 1_000_000_000n),
      timeNano: Number(nanos),
    };
    this.recent.push(event);
    if (this.recent.length > KEPT) this.recent.shift();
    this.deliver('event', event);
    return event;
  }

  operation(record: OperationRecord): void {
    this.deliver('operation', record);
  }

  /** One query the embedded resolver answered (or dropped), by outcome. */
  dnsQuery(outcome: string): void {
    this.deliver('dns', outcome);
  }

  /** Events kept since `sinceNano` (inclusive), oldest first. */
  since(sinceNano: number): BerthEvent[] {
    return this.recent.filter((e) => e.timeNano >= sinceNano);
  }

  onEvent(fn: (e: BerthEvent) => void): () => void {
    this.emitter.on('event', fn);
    return () => this.emitter.off('event', fn);
  }

  onOperation(fn: (r: OperationRecord) => void): () => void {
    this.emitter.on('operation', fn);
    return () => this.emitter.off('operation', fn);
  }

  onDnsQuery(fn: (outcome: string) => void): () => void {
    this.emitter.on('dns', fn);
    return () => this.emitter.off('dns', fn);
  }

  private deliver(name: string, value: unknown): void {
    for (const fn of this.emitter.listeners(name)) {
      try {
        (fn as (v: unknown) => void)(value);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}
