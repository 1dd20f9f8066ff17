/**
 * The shape of a compiled retro-hunt that keeps it fast at 10M events (issue 16), beside the
 * equivalence tests (sql.test.ts, test/store/materialized.test.ts) that keep it exact:
 * - set tests on a field column are `lower(c) IN [...]`: evaluated once per LowCardinality
 *   dictionary entry (10M events: ~25 ms), where `has([...], lower(c))` builds an array per row (~350 ms);
 * - the source is `source IN [...]`, which the sort key (source, toDate(time), id) prunes on;
 * - the rows are returned as `source, id, time_ms`, without a formatted date per match;
 * - the deduplication tie-break reads the stored `raw_hash`, not a hash of `raw` per row.
 */
import { describe, expect, it } from 'vitest';
import { loadRules } from '../../rules/engine/index.js';
import { compileRuleSql } from '../../rules/sql/index.js';

const yaml = (title: string, detection: string) => `title: ${title}
logsource:
  product: aws
  service: cloudtrail
detection:
${detection}
`;

const rule = (title: string, detection: string) => {
  const loaded = loadRules([{ file: `${title}.yml`, text: yaml(title, detection) }]);
  const r = loaded.rules[0];
  if (!r) throw new Error(`rule ${title} rejected: ${JSON.stringify(loaded.rejected)}`);
  return r;
};

describe('compiled retro-hunt shape', () => {
  const decided = rule(
    'stop logging',
    `  sel:
    eventSource: cloudtrail.amazonaws.com
    eventName: [StopLogging, DeleteTrail]
  condition: sel`,
  );
  const undecided = rule(
    'root',
    `  sel:
    userIdentity.type: Root
  not_service:
    eventType: AwsServiceEvent
  condition: sel and not not_service`,
  );

  it('tests field columns with IN on the lower-cased column, never has() per row', () => {
    for (const r of [decided, undecided]) {
      const { sql } = compileRuleSql(r);
      expect(sql).not.toMatch(/has\(\{p\d+:Array\(String\)\}, lower\(/);
      expect(sql).toMatch(/lower\(ct_\w+\) IN \{p\d+:Array\(String\)\}/);
    }
  });

  it('restricts the source with IN, which the sort key prunes on', () => {
    const { sql } = compileRuleSql(decided);
    expect(sql).toMatch(/source IN \{p\d+:Array\(String\)\}/);
    expect(sql).not.toMatch(/has\(\{p\d+:Array\(String\)\}, source\)/);
  });

  it('returns source, id and time_ms only, and breaks dedup ties on the stored raw_hash', () => {
    for (const r of [decided, undecided]) {
      const { sql } = compileRuleSql(r);
      expect(sql.split('\n')[0]).toBe('SELECT source, id, toUnixTimestamp64Milli(time) AS time_ms');
      expect(sql).toMatch(/ORDER BY source, id, ingested_at DESC, raw_hash DESC/);
      expect(sql).not.toContain('cityHash64(raw)');
    }
  });

  it('a table named by the caller has no raw_hash: the tie-break hashes raw', () => {
    const { sql } = compileRuleSql(undecided, { table: 'other_events' });
    expect(sql).toContain('cityHash64(raw) DESC');
  });
});
