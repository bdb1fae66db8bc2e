// `roomtone <command>`: one program, one module per command under commands/.
import { Command, CommanderError } from 'commander';
import { registerRoom } from './commands/room.ts';
import { registerWatch } from './commands/watch.ts';
import { registerAgent } from './commands/agent.ts';
import { registerJob } from './commands/job.ts';
import { registerCatalog } from './commands/catalog.ts';
import { registerIdentify } from './commands/identify.ts';
import { registerAnalyze } from './commands/analyze.ts';
import { CliError } from './cli-error.ts';

const program = new Command('roomtone')
  .description('roomtone: a shared transport clock, live audio analysis, identification and job streams at the edge')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

registerRoom(program);
registerWatch(program);
registerAgent(program);
registerJob(program);
registerCatalog(program);
registerIdentify(program);
registerAnalyze(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  if (e instanceof CliError) {
    process.stderr.write(`roomtone: ${e.message}\n`);
    process.exit(e.exitCode);
  }
  process.stderr.write(`roomtone: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
