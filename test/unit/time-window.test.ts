import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TimeWindow } from '../../shared/config/schema.ts';
import { inWindow, wallClock } from '../../native-host/src/policy/time-window.ts';

// 2024-06-03 is a Monday. Asia/Tokyo is UTC+9 all year (no daylight saving).
const tokyo = (isoLocal: string): Date => new Date(`${isoLocal}+09:00`);

describe('wallClock', () => {
  test('reads weekday and minutes in the given zone', () => {
    assert.deepEqual(wallClock(new Date('2024-06-03T00:30:00Z'), 'Asia/Tokyo'), {
      day: 'mon',
      minute: 9 * 60 + 30,
    });
    assert.deepEqual(wallClock(new Date('2024-06-03T00:30:00Z'), 'UTC'), { day: 'mon', minute: 30 });
    // Sunday evening in New York is already Monday morning in Tokyo.
    assert.deepEqual(wallClock(new Date('2024-06-02T23:30:00Z'), 'America/New_York'), {
      day: 'sun',
      minute: 19 * 60 + 30,
    });
    assert.deepEqual(wallClock(new Date('2024-06-03T00:00:00Z'), 'UTC'), { day: 'mon', minute: 0 });
  });

  test('an unknown zone is a RangeError', () => {
    assert.throws(() => wallClock(new Date(), 'Mars/Olympus'), RangeError);
  });
});

describe('inWindow', () => {
  test('an empty window always holds', () => {
    assert.equal(inWindow({}, new Date()), true);
    assert.equal(inWindow({ timeZone: 'Asia/Tokyo' }, new Date()), true);
  });

  test('only days: the whole day in the zone', () => {
    const w: TimeWindow = { days: ['mon', 'tue'], timeZone: 'Asia/Tokyo' };
    assert.equal(inWindow(w, tokyo('2024-06-03T00:00:00')), true);
    assert.equal(inWindow(w, tokyo('2024-06-04T23:59:59')), true);
    assert.equal(inWindow(w, tokyo('2024-06-02T23:59:59')), false);
    assert.equal(inWindow(w, tokyo('2024-06-05T00:00:00')), false);
    // Monday 01:00 in Tokyo is still Sunday in UTC.
    assert.equal(inWindow({ days: ['mon'], timeZone: 'UTC' }, tokyo('2024-06-03T01:00:00')), false);
  });

  test('only hours: from inclusive, to exclusive, every day', () => {
    const w: TimeWindow = { from: '09:00', to: '17:30', timeZone: 'Asia/Tokyo' };
    assert.equal(inWindow(w, tokyo('2024-06-08T08:59:59')), false);
    assert.equal(inWindow(w, tokyo('2024-06-08T09:00:00')), true);
    assert.equal(inWindow(w, tokyo('2024-06-09T17:29:59')), true);
    assert.equal(inWindow(w, tokyo('2024-06-09T17:30:00')), false);
  });

  test('days and hours', () => {
    const w: TimeWindow = {
      days: ['mon', 'tue', 'wed', 'thu', 'fri'],
      from: '09:00',
      to: '17:00',
      timeZone: 'Asia/Tokyo',
    };
    assert.equal(inWindow(w, tokyo('2024-06-07T10:00:00')), true); // Friday
    assert.equal(inWindow(w, tokyo('2024-06-08T10:00:00')), false); // Saturday
    assert.equal(inWindow(w, tokyo('2024-06-07T18:00:00')), false);
  });

  test('across midnight: the days name the evening the window starts', () => {
    const w: TimeWindow = { days: ['fri'], from: '22:00', to: '06:00', timeZone: 'Asia/Tokyo' };
    assert.equal(inWindow(w, tokyo('2024-06-07T21:59:00')), false); // Friday before
    assert.equal(inWindow(w, tokyo('2024-06-07T22:00:00')), true); // Friday night
    assert.equal(inWindow(w, tokyo('2024-06-07T23:59:00')), true);
    assert.equal(inWindow(w, tokyo('2024-06-08T00:00:00')), true); // Saturday small hours
    assert.equal(inWindow(w, tokyo('2024-06-08T05:59:00')), true);
    assert.equal(inWindow(w, tokyo('2024-06-08T06:00:00')), false);
    assert.equal(inWindow(w, tokyo('2024-06-08T22:30:00')), false); // Saturday night is not Friday's
    assert.equal(inWindow(w, tokyo('2024-06-07T03:00:00')), false); // Friday 03:00 is Thursday's night
  });

  test('across midnight from Sunday wraps to Monday', () => {
    const w: TimeWindow = { days: ['sun'], from: '23:00', to: '01:00', timeZone: 'Asia/Tokyo' };
    assert.equal(inWindow(w, tokyo('2024-06-03T00:30:00')), true); // Monday 00:30
    assert.equal(inWindow(w, tokyo('2024-06-04T00:30:00')), false); // Tuesday 00:30
  });

  test('across midnight without days', () => {
    const w: TimeWindow = { from: '22:00', to: '06:00', timeZone: 'Asia/Tokyo' };
    assert.equal(inWindow(w, tokyo('2024-06-05T23:00:00')), true);
    assert.equal(inWindow(w, tokyo('2024-06-05T05:00:00')), true);
    assert.equal(inWindow(w, tokyo('2024-06-05T12:00:00')), false);
  });

  test('from equal to to is a whole day starting at from', () => {
    assert.equal(
      inWindow({ from: '00:00', to: '00:00', timeZone: 'UTC' }, new Date('2024-06-05T13:37:00Z')),
      true,
    );
    const w: TimeWindow = { days: ['mon'], from: '08:00', to: '08:00', timeZone: 'Asia/Tokyo' };
    assert.equal(inWindow(w, tokyo('2024-06-03T08:00:00')), true);
    assert.equal(inWindow(w, tokyo('2024-06-04T07:59:00')), true);
    assert.equal(inWindow(w, tokyo('2024-06-04T08:00:00')), false);
    assert.equal(inWindow(w, tokyo('2024-06-03T07:59:00')), false);
  });

  test('the same instant reads differently in different zones', () => {
    const instant = new Date('2024-06-03T12:00:00Z'); // 21:00 Tokyo, 14:00 Berlin (CEST), 08:00 New York
    const office = (timeZone: string): TimeWindow => ({ from: '09:00', to: '17:00', timeZone });
    assert.equal(inWindow(office('Asia/Tokyo'), instant), false);
    assert.equal(inWindow(office('Europe/Berlin'), instant), true);
    assert.equal(inWindow(office('America/New_York'), instant), false);
  });

  test('a zone with daylight saving follows it', () => {
    const w: TimeWindow = { from: '09:00', to: '10:00', timeZone: 'Europe/Berlin' };
    // 08:30 UTC is 09:30 in winter (CET) and 10:30 in summer (CEST).
    assert.equal(inWindow(w, new Date('2024-01-15T08:30:00Z')), true);
    assert.equal(inWindow(w, new Date('2024-07-15T08:30:00Z')), false);
  });

  test('without a time zone the host zone is used', () => {
    const saved = process.env.TZ;
    try {
      process.env.TZ = 'Asia/Tokyo';
      assert.equal(inWindow({ from: '09:00', to: '10:00' }, tokyo('2024-06-03T09:15:00')), true);
      process.env.TZ = 'UTC';
      assert.equal(inWindow({ from: '09:00', to: '10:00' }, tokyo('2024-06-03T09:15:00')), false);
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });
});
