/**
 * Time windows of access rules, read on the wall clock of the window's time zone (the host's own
 * zone when it names none), so "09:00-17:00 Europe/Berlin" follows Berlin's daylight saving.
 *
 * - `from` is inclusive and `to` exclusive, in minutes of the local day.
 * - `to` before `from` spans midnight: 22:00-06:00 covers 22:00 to 23:59 and 00:00 to 05:59.
 *   `to` equal to `from` is a whole 24 hours starting at `from` (so 00:00-00:00 is all day);
 *   an empty window would be a rule that can never match, which nobody means to write.
 * - `days` name the day a window starts on. For a window across midnight, Friday 22:00-06:00
 *   therefore includes Saturday 03:00 and excludes Monday 03:00 (that belongs to Sunday night):
 *   the night is one shift, decided by the evening it began, as people say "Friday night".
 * - Only `days`: the whole of those days. Only `from`/`to`: every day. Neither: always.
 */
import type { Day, TimeWindow } from '../../../shared/config/schema.ts';

const WEEKDAYS: Record<string, Day> = {
  Mon: 'mon',
  Tue: 'tue',
  Wed: 'wed',
  Thu: 'thu',
  Fri: 'fri',
  Sat: 'sat',
  Sun: 'sun',
};
const ORDER: readonly Day[] = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

interface WallClock {
  readonly day: Day;
  /** Minutes since local midnight. */
  readonly minute: number;
}

// Building an Intl.DateTimeFormat costs far more than formatting with one, and windows are
// checked per connection.
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string | undefined): Intl.DateTimeFormat {
  // The host's zone is keyed by TZ so that a changed TZ (tests, a reload) is not served stale.
  const key = timeZone === undefined ? `host:${process.env.TZ ?? ''}` : `zone:${timeZone}`;
  let f = formatters.get(key);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(key, f);
  }
  return f;
}

/** The weekday and time of day at `now` in `timeZone`. Throws a RangeError for an unknown zone. */
export function wallClock(now: Date, timeZone?: string): WallClock {
  let day: Day | undefined;
  let hour = -1;
  let minute = -1;
  for (const part of formatterFor(timeZone).formatToParts(now)) {
    if (part.type === 'weekday') day = WEEKDAYS[part.value];
    else if (part.type === 'hour') hour = Number(part.value) % 24;
    else if (part.type === 'minute') minute = Number(part.value);
  }
  if (day === undefined || hour < 0 || minute < 0) {
    throw new RangeError(`cannot read the time of day in time zone '${timeZone ?? 'host'}'`);
  }
  return { day, minute: hour * 60 + minute };
}

function clockMinutes(text: string, field: string): number {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(text);
  if (m === null) throw new RangeError(`${field} must be a time of day such as 09:00, not '${text}'`);
  return Number(m[1]) * 60 + Number(m[2]);
}

export function inWindow(window: TimeWindow, now: Date): boolean {
  const { days, from, to, timeZone } = window;
  if (days === undefined && from === undefined && to === undefined) return true;
  const clock = wallClock(now, timeZone);
  if (from === undefined || to === undefined) return days === undefined || days.includes(clock.day);
  const start = clockMinutes(from, 'from');
  const end = clockMinutes(to, 'to');
  let startDay: Day;
  if (start < end) {
    if (clock.minute < start || clock.minute >= end) return false;
    startDay = clock.day;
  } else if (clock.minute >= start) {
    startDay = clock.day;
  } else if (clock.minute < end) {
    startDay = ORDER[(ORDER.indexOf(clock.day) + 6) % 7]!;
  } else {
    return false;
  }
  return days === undefined || days.includes(startDay);
}
