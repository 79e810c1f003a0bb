// `eipdns serve` as a real child process (`node bin/eipdns.js`, the bundle the
// global setup builds), with its output kept and its pino lines readable:
// for the tests that need the CLI itself (signals, exit codes, what reaches
// stdout and stderr) rather than an in-process server.

import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { track } from '../interop/tools.js';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const bin = join(root, 'bin', 'eipdns.js');

export interface ServeProcess {
  readonly child: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** stdout and stderr as written, interleaved. */
  output(): string;
  stdout(): string;
  stderr(): string;
  /** The JSON log lines whose msg starts with `msg`. */
  logged(msg: string): Array<Record<string, unknown>>;
}

export function spawnServe(config: string, opts: { readonly cwd?: string; readonly env?: NodeJS.ProcessEnv } = {}): ServeProcess {
  const child = track(
    spawn(process.execPath, [bin, 'serve', '--config', config], {
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
      ...(opts.env !== undefined ? { env: opts.env } : {}),
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let output = '';
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    output += s;
    stdout += s;
  });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    output += s;
    stderr += s;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    exited,
    output: () => output,
    stdout: () => stdout,
    stderr: () => stderr,
    logged: (msg) =>
      output
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => typeof l.msg === 'string' && l.msg.startsWith(msg)),
  };
}
