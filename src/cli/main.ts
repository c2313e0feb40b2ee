import manifest from '../../package.json' with { type: 'json' };
import { ResnetWasmError } from '../errors.ts';
import { OptionError } from '../options/validate.ts';
import { type Command, commandHelp, EXIT, nearest, parseCommandArgs, UsageError } from './command.ts';
import { COMMANDS } from './commands.ts';
import { isFileError } from './errors.ts';

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'resnet-wasm — int8 ResNet image classification in WebAssembly SIMD',
    '',
    'Usage: resnet-wasm <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'resnet-wasm help <command>, or resnet-wasm <command> --help: its options and examples.',
    'resnet-wasm --version: the version.',
    'Exit codes: 0 success, 1 failure at run time (a bad file, image or model), 2 bad arguments.',
    '',
  ].join('\n');
}

function findCommand(name: string): Command {
  const command = COMMANDS.find((c) => c.name === name);
  if (command !== undefined) return command;
  const near = nearest(
    name,
    COMMANDS.map((c) => c.name),
  );
  throw new UsageError(
    `unknown command "${name}"${near === undefined ? '' : `; did you mean "${near}"?`} (resnet-wasm help lists them)`,
  );
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v') return print(`${manifest.version}\n`);
  if (name === undefined) return print(overview(), process.stderr, EXIT.usage);
  if (name === 'help' || name === '--help' || name === '-h')
    return print(rest[0] === undefined ? overview() : commandHelp(findCommand(rest[0])));
  const command = findCommand(name);
  const args = parseCommandArgs(command, rest);
  if (args === 'help') return print(commandHelp(command));
  await command.run(args);
  return process.exitCode === undefined ? EXIT.ok : Number(process.exitCode);
}

function print(text: string, stream: NodeJS.WriteStream = process.stdout, code: number = EXIT.ok): number {
  stream.write(text);
  return code;
}

/** Errors we expect (bad arguments, files, images, models) print one line; anything else is a bug: full stack. */
function report(error: unknown): number {
  if (error instanceof UsageError || error instanceof OptionError) {
    process.stderr.write(`resnet-wasm: ${error.message}\n`);
    return EXIT.usage;
  }
  if (error instanceof ResnetWasmError || isFileError(error)) {
    process.stderr.write(`resnet-wasm: ${(error as Error).message}\n`);
    return EXIT.failure;
  }
  process.stderr.write(`resnet-wasm: internal error: ${error instanceof Error ? error.stack : String(error)}\n`);
  return EXIT.failure;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => process.exit(report(error)),
);
