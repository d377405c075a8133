#!/usr/bin/env node
// The sources are TypeScript run through tsx's loader, so the installed CLI and the tests run the same code.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
