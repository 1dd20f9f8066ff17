// Opens an embedded store in a separate process and prints its distinct event count:
// proves the data folder is durable across processes.
import { createClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';

const client = createClient({ connection: createChdbConnection({ path: process.argv[2] }) });
const rows = await (await client.query({ query: 'SELECT count() AS n FROM (SELECT id FROM events LIMIT 1 BY source, id)', format: 'JSONEachRow' })).json();
process.stdout.write(JSON.stringify(rows));
await client.close();
