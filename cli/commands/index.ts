// Every command module, loaded only when it is needed: a command's module pulls in what it runs
// with (pg, BullMQ, fastify, liquidjs...), and `forewarn <command>` should load that command's
// alone. The order is the order of `forewarn --help`.
import type { Command } from 'commander';

export type RegisterCommands = (program: Command) => void;

export const COMMAND_MODULES: Readonly<Record<string, () => Promise<RegisterCommands>>> = {
  migrate: async () => (await import('./migrate.ts')).registerMigrate,
  config: async () => (await import('./config.ts')).registerConfig,
  start: async () => (await import('./start.ts')).registerStart,
  run: async () => (await import('./run.ts')).registerRun,
  backtest: async () => (await import('./backtest.ts')).registerBacktest,
  incidents: async () => (await import('./incidents.ts')).registerIncidents,
  deliveries: async () => (await import('./deliveries.ts')).registerDeliveries,
  ops: async () => (await import('./ops.ts')).registerOps,
  demo: async () => (await import('./demo.ts')).registerDemo,
  templates: async () => (await import('./templates.ts')).registerTemplates,
};
