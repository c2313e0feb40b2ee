/**
 * The host CPU's family where the host says it: Node's `process.arch`, or Chromium's
 * `navigator.userAgentData` (in pages and workers); `unknown` elsewhere. The relaxed kernels pay
 * only off x86: there V8's dot (vpdpbusd with AVX-VNNI, else pmaddubsw) made the direct convs
 * 1.4 to 2.3 times slower than the baseline's; on arm64 it is one sdot.
 */
export type CpuFamily = 'x86' | 'arm' | 'other' | 'unknown';

interface HighEntropyUserAgent {
  getHighEntropyValues(hints: string[]): Promise<{ architecture?: string }>;
}

export async function cpuFamily(): Promise<CpuFamily> {
  const host = globalThis as { process?: { arch?: string }; navigator?: { userAgentData?: HighEntropyUserAgent } };
  const nodeArch = host.process?.arch;
  if (typeof nodeArch === 'string') return familyOf(nodeArch);
  const userAgent = host.navigator?.userAgentData;
  if (!userAgent?.getHighEntropyValues) return 'unknown';
  try {
    return familyOf((await userAgent.getHighEntropyValues(['architecture'])).architecture ?? '');
  } catch {
    return 'unknown';
  }
}

function familyOf(arch: string): CpuFamily {
  if (arch === 'x64' || arch === 'ia32' || arch === 'x86') return 'x86';
  if (arch.startsWith('arm')) return 'arm';
  return arch === '' ? 'unknown' : 'other';
}
