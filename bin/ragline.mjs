#!/usr/bin/env node
// ragline runs from its TypeScript sources through tsx: no build step between a clone and a running service.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
