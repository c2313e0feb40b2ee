/**
 * Whether the CPU has an int8 dot instruction that makes the relaxed kernels pay: arm64 with
 * dotprod (sdot; a Raspberry Pi 5, Apple and most arm64 laptops), as far as the host says. Not x86:
 * there V8's dot (vpdpbusd with AVX-VNNI, else pmaddubsw) made the direct convs 1.4 to 1.6 times
 * slower than the baseline's. Not arm64 without dotprod (a Raspberry Pi 4's Cortex-A72): V8 then
 * emulates the dot, and ResNet-18 executed 15% more instructions than with the baseline.
 *
 * Node says its `process.arch`, and on Linux the kernel's HWCAP (from /proc/self/auxv, which
 * qemu-user emulates too); Chromium says `navigator.userAgentData`'s architecture, not the
 * features, so an arm CPU there counts as having dotprod. Elsewhere: unknown, so no.
 */
export async function hasFastInt8Dot(): Promise<boolean> {
  const host = globalThis as {
    process?: { arch?: string; platform?: string };
    navigator?: { userAgentData?: HighEntropyUserAgent };
  };
  const { arch, platform } = host.process ?? {};
  if (typeof arch === 'string') return arch === 'arm64' && (platform !== 'linux' || (await linuxHasDotProd()));
  return (await browserArchitecture(host.navigator?.userAgentData)) === 'arm';
}

interface HighEntropyUserAgent {
  getHighEntropyValues(hints: string[]): Promise<{ architecture?: string }>;
}

async function browserArchitecture(userAgent: HighEntropyUserAgent | undefined): Promise<string> {
  try {
    return (await userAgent?.getHighEntropyValues(['architecture']))?.architecture ?? '';
  } catch {
    return '';
  }
}

/** AT_HWCAP, and its ASIMDDP bit (Linux's arch/arm64 hwcap.h). */
const AT_HWCAP = 16n;
const HWCAP_ASIMDDP = 1n << 20n;

async function linuxHasDotProd(): Promise<boolean> {
  try {
    const { readFile } = await import('node:fs/promises');
    const auxv = await readFile('/proc/self/auxv');
    const view = new DataView(auxv.buffer, auxv.byteOffset, auxv.byteLength);
    for (let at = 0; at + 16 <= auxv.byteLength; at += 16) {
      if (view.getBigUint64(at, true) === AT_HWCAP) return (view.getBigUint64(at + 8, true) & HWCAP_ASIMDDP) !== 0n;
    }
  } catch {
    // No auxv to read: say no rather than guess.
  }
  return false;
}
