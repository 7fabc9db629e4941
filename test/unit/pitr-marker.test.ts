/** The PITR drill's exact check (lib/pitr/marker.ts) on what a restored server answers. */
import { checkMarker, MARKER_SCRIPT, MARKER_SQL } from '../../lib/pitr/marker';

/** A restored server holding these markers (ISO times), answering the check's three queries. */
function restored(markers: string[] | undefined) {
  return async (sql: string): Promise<string> => {
    if (sql.includes('to_regclass')) return markers === undefined ? 'f' : 't';
    if (sql.includes('max(at)')) return markers && markers.length > 0 ? [...markers].sort().at(-1) as string : '';
    const after = /at > '([^']+)'/.exec(sql)?.[1];
    if (after) return String((markers ?? []).filter((marker) => Date.parse(marker) > Date.parse(after)).length);
    throw new Error(`unexpected SQL ${sql}`);
  };
}
const target = { time: new Date('2026-12-03T12:00:00.000Z') };

test('a time target: the newest marker at or before it and within two intervals, none after it', async () => {
  expect(await checkMarker(restored(['2026-12-03T11:50:00.000Z', '2026-12-03T11:55:00.000Z']), target, undefined)).toMatchObject({ name: 'pitr-marker', ok: true });
  const past = await checkMarker(restored(['2026-12-03T11:55:00.000Z', '2026-12-03T12:00:00.500Z']), target, undefined);
  expect(past).toMatchObject({ ok: false });
  expect(past.detail).toContain('1 marker(s) after the target: the restore went past its target');
  const short = await checkMarker(restored(['2026-12-03T11:40:00.000Z']), target, undefined);
  expect(short).toMatchObject({ ok: false });
  expect(short.detail).toContain('not within 600s before the target');
});

test('latest: the newest marker near the archive\'s newest segment; no table at all fails, saying why', async () => {
  const archived = new Date('2026-12-03T12:00:00.000Z');
  expect(await checkMarker(restored(['2026-12-03T11:56:00.000Z']), 'latest', archived)).toMatchObject({ ok: true });
  expect(await checkMarker(restored(['2026-12-03T11:30:00.000Z']), 'latest', archived)).toMatchObject({ ok: false });
  const none = await checkMarker(restored(undefined), 'latest', archived);
  expect(none).toMatchObject({ ok: false });
  expect(none.detail).toContain('lifeboat.pitr_marker is not in the restored database');
});

test('the document writes one row as the server\'s user over its socket, and keeps the table small', () => {
  expect(MARKER_SQL).toContain('INSERT INTO lifeboat.pitr_marker DEFAULT VALUES');
  expect(MARKER_SQL).toContain("DELETE FROM lifeboat.pitr_marker WHERE at < now() - interval '40 days'");
  expect(MARKER_SCRIPT.join('\n')).toContain('runuser -u "{{ osUser }}"');
  expect(MARKER_SCRIPT.join('\n')).toContain('-h "{{ socketDir }}" -p "{{ port }}" -d "{{ database }}"');
});
