export { openStore, type Store, type StoreConfig } from './client.js';
export { migrate, migrations, type Migration, type MigrationResult, type SchemaOptions } from './migrations.js';
export { StoreWriter, insertRows, eventRow, deadLetterRow, type DeadLetter, type WriterOptions } from './writer.js';
