import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export function createLogger(level: LevelWithSilent = 'info'): Logger {
  return pino({ level, base: { name: 'eipdns' } });
}

/** For tests and embedders that want no output. */
export const silentLogger: Logger = pino({ level: 'silent' });

/**
 * Node prints process warnings as plain text on stderr; the AWS SDK's
 * NodeVersionSupportWarning on Node 20 alone is eight lines, which breaks a
 * log stream that is otherwise one JSON object per line. This replaces Node's
 * printer with `write`, given the warning and its text on one line.
 */
export function routeProcessWarnings(write: (warning: Error & { code?: string }, oneLine: string) => void): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning: Error & { code?: string }) => {
    write(warning, warning.message.replace(/\s+/g, ' ').trim());
  });
}
