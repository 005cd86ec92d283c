// Builds native/core's C++ tests with AddressSanitizer + UBSan (where the compiler has them)
// and runs them through ctest. Used by `npm test`.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const build = join(root, 'build-tests');
mkdirSync(build, { recursive: true });

function sanitizersWork() {
  const probe = spawnSync('sh', ['-c', 'echo "int main(){return 0;}" | c++ -x c++ -fsanitize=address,undefined -o /dev/null -'], { stdio: 'ignore' });
  return probe.status === 0;
}

const sanitize = process.env.RECSCORE_SANITIZE ?? (sanitizersWork() ? 'ON' : 'OFF');
if (sanitize !== 'ON') console.log('native tests: sanitizers unavailable on this compiler, building without them');
const run = (cmd, args) => execFileSync(cmd, args, { cwd: build, stdio: 'inherit' });
run('cmake', [root, '-DRECSCORE_TESTS=ON', `-DRECSCORE_SANITIZE=${sanitize}`, '-DCMAKE_BUILD_TYPE=RelWithDebInfo']);
run('cmake', ['--build', '.', '--parallel', '2']);
run('ctest', ['--output-on-failure']);
