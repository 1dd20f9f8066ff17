import { runStage } from './deliver.js';

export function revokeCommand(argv: string[]): Promise<number> {
  return runStage('revoke', argv);
}
