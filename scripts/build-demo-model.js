#!/usr/bin/env node
// npm "prepack": converts the demo model (assets/demo-model, the HF export of
// scripts/train-demo-model.py) into dist/demo.bitnet, the file the package ships
// and `--model demo` loads. Needs the compiled TypeScript (npm run build:ts).
'use strict';
const path = require('path');
const { convertModel } = require('../dist/engine/convert');
const { DEMO_LM_HEAD, DEMO_MODEL_SOURCE, SHIPPED_DEMO_MODEL } = require('../dist/engine/demo-model');

const result = convertModel(DEMO_MODEL_SOURCE, SHIPPED_DEMO_MODEL, { lmHead: DEMO_LM_HEAD });
console.log(`${path.relative(process.cwd(), result.output)}: ${(result.bytes / 2 ** 20).toFixed(2)} MiB`);
