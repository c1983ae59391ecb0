/**
 * The demo model: a tiny BitNet b1.58 trained on the King James Bible (scripts/train-demo-model.py,
 * docs/demo-model.md), small enough to ship inside the npm package so that the first command
 * works offline. The package carries it converted (dist/demo.bitnet, written at pack time from
 * assets/demo-model by scripts/build-demo-model.js); a git checkout converts the HF folder on
 * first use instead.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ensureConverted } from './convert';
import type { EnsureConvertedOptions, LmHeadFormat } from './convert';

/** What `--model` takes for the demo model (see {@link demoModelPath}). */
export const DEMO_MODEL_NAME = 'demo';

/** The demo's LM head is kept in f16: at this size int8 rows would cost more accuracy than they save. */
export const DEMO_LM_HEAD: LmHeadFormat = 'f16';

/** This module lives in src/engine or dist/engine, two levels below the package root. */
const PACKAGE_ROOT = path.join(__dirname, '..', '..');

/** The HF folder the demo is trained into (in a git checkout, not in the package). */
export const DEMO_MODEL_SOURCE = path.join(PACKAGE_ROOT, 'assets', 'demo-model');

/** Where the package carries the converted demo (dist/demo.bitnet). */
export const SHIPPED_DEMO_MODEL = path.join(PACKAGE_ROOT, 'dist', 'demo.bitnet');

/**
 * The bit-plane file of the demo model, for {@link BitNetModel.load}: in a git checkout
 * assets/demo-model converted once into the conversion cache (so a retrained model is never
 * shadowed by an older dist/demo.bitnet), in the installed package the shipped dist/demo.bitnet.
 * @param options cache folder and progress for the conversion (lmHead is always {@link DEMO_LM_HEAD})
 * @throws Error when neither the HF folder nor the shipped file exists
 */
export function demoModelPath(options: Omit<EnsureConvertedOptions, 'lmHead'> = {}): string {
  if (fs.existsSync(path.join(DEMO_MODEL_SOURCE, 'config.json'))) return ensureConverted(DEMO_MODEL_SOURCE, { ...options, lmHead: DEMO_LM_HEAD });
  if (fs.existsSync(SHIPPED_DEMO_MODEL)) return SHIPPED_DEMO_MODEL;
  throw new Error(`the demo model is missing: neither ${DEMO_MODEL_SOURCE} nor ${SHIPPED_DEMO_MODEL} exists (a broken install?)`);
}
