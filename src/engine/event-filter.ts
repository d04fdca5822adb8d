/**
 * Which events a `GET /events?filters=…` subscriber gets, as Docker's daemon/events/filter.go
 * decides it: every key given must match (keys are ANDed), any value of a key may (values are
 * ORed). Names and IDs match by prefix (Docker's FuzzyMatch), `type`, `event` and `scope` exactly.
 */
import { invalid } from '../errors.js';
import type { BerthEvent } from './events.js';

/** Docker's object types: each one is also a filter key naming an object of that type. */
const OBJECT_TYPES = ['container', 'image', 'volume', 'network', 'daemon', 'plugin', 'node', 'service', 'secret', 'config'] as const;

/** Every key Docker's `/events` understands; berth accepts them all so no docker CLI filter is refused. */
export const EVENT_FILTERS = [...OBJECT_TYPES, 'event', 'label', 'scope', 'type'] as const;

export type EventFilters = Record<string, string[]>;

/** Docker's `Args.ExactMatch`: no values for the key means no constraint. */
function exact(values: string[] | undefined, source: string): boolean {
  return !values?.length || values.includes(source);
}

/** Docker's `Args.FuzzyMatch`: exact, or the value is a prefix of the source (a short ID, a name's start). */
function fuzzy(values: string[] | undefined, source: string | undefined): boolean {
  return !values?.length || (source !== undefined && values.some((v) => source.startsWith(v)));
}

/** Docker's `Args.MatchKVList` over the Actor's attributes: every `key` or `key=value` must be there. */
function labelsMatch(values: string[] | undefined, attributes: Record<string, string>): boolean {
  return (values ?? []).every((v) => {
    const eq = v.indexOf('=');
    const key = eq < 0 ? v : v.slice(0, eq);
    return Object.hasOwn(attributes, key) && (eq < 0 || attributes[key] === v.slice(eq + 1));
  });
}

/**
 * Checks what Docker would silently accept but can never match in a way that is a typo: a `type`
 * that is no Docker object type (`type=netwrok`) gets an error naming the valid ones.
 */
export function checkEventFilters(filters: EventFilters): EventFilters {
  for (const t of filters.type ?? []) {
    if (!(OBJECT_TYPES as readonly string[]).includes(t)) {
      throw invalid(`invalid filter 'type=${t}': the event types are ${OBJECT_TYPES.join(', ')} (berth sends container and network events)`);
    }
  }
  return filters;
}

/**
 * Docker's `Filter.Include`. One addition: `container=NAME-or-ID` also keeps the network
 * connect/disconnect events of that container (its ID or name is in their attributes), where
 * Docker matches only the Actor (a network) and so drops them; what Docker keeps, berth keeps too.
 */
export function eventMatcher(filters: EventFilters): (e: BerthEvent) => boolean {
  return (e) => {
    const attrs = e.Actor.Attributes;
    const byName = (key: string) => fuzzy(filters[key], e.Actor.ID) || fuzzy(filters[key], attrs.name);
    if (!exact(filters.event, e.Action) || !exact(filters.type, e.Type) || !exact(filters.scope, e.scope)) return false;
    for (const key of OBJECT_TYPES) {
      if (key === 'image' || key === 'container') continue;
      if (!byName(key)) return false;
    }
    const containerOfNetworkEvent = e.Type === 'network' && (fuzzy(filters.container, attrs.container) || fuzzy(filters.container, attrs.containerName));
    if (!byName('container') && !containerOfNetworkEvent) return false;
    if (filters.image?.length && !(filters.image.includes(e.Actor.ID) || (attrs.image !== undefined && filters.image.includes(attrs.image)))) return false;
    return labelsMatch(filters.label, attrs);
  };
}
