// Runs the CLI from source in a child process (tests of long-running commands and signals).
import { main } from '../../cli/main.js';

process.exitCode = await main(process.argv.slice(2));
