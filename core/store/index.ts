export { connectStore, type OpenOptions, openStore, type Store, type StoreConfig } from './client.js';
export { type Migration, type MigrationResult, migrate, migrations, type SchemaOptions } from './migrations.js';
export { type DeadLetter, deadLetterRow, eventRow, insertRows, StoreWriter, type WriterOptions } from './writer.js';
