// Prints one group of native/sources.json, space-separated, for binding.gyp's
// <!@(...) expansion, so that node-gyp and CMake build from the same list.
const path = require('path');
const group = process.argv[2];
const list = require(path.join(__dirname, '..', 'native', 'sources.json'))[group];
if (!Array.isArray(list)) {
  console.error(`gyp-sources: unknown group "${group}"`);
  process.exit(1);
}
console.log(list.join(' '));
