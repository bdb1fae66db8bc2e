#!/usr/bin/env node
// npx puts node_modules/.bin first on PATH, so this runs on the project's
// pinned Node (the `node` devDependency), which loads TypeScript directly.
import '../cli.ts';
