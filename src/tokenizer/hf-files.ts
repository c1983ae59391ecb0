import * as fs from 'fs';
import * as path from 'path';
import { HfTokenizerConfig, HfTokenizerJson, Tokenizer } from './tokenizer';

/**
 * Loads `tokenizer.json` and, when present, `tokenizer_config.json` (BOS/EOS names, chat
 * template) from a Hugging Face model directory.
 */
export function loadHfTokenizer(directory: string): Tokenizer {
  const json = JSON.parse(fs.readFileSync(path.join(directory, 'tokenizer.json'), 'utf8')) as HfTokenizerJson;
  const configPath = path.join(directory, 'tokenizer_config.json');
  const config = fs.existsSync(configPath) ? (JSON.parse(fs.readFileSync(configPath, 'utf8')) as HfTokenizerConfig) : {};
  return Tokenizer.fromHfJson(json, config);
}
