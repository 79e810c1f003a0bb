import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export function createLogger(level: LevelWithSilent = 'info'): Logger {
  return pino({ level, base: { name: 'eipdns' } });
}

/** For tests and embedders that want no output. */
export const silentLogger: Logger = pino({ level: 'silent' });
