/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), identical to zlib's `crc32`.
 * Slice-by-8: eight 256-entry tables let the loop fold 8 bytes per step.
 */

const POLY = 0xedb88320;

const TABLES = buildTables();

function buildTables(): Int32Array[] {
  const tables = Array.from({ length: 8 }, () => new Int32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    tables[0][n] = c;
  }
  for (let n = 0; n < 256; n++) {
    for (let t = 1; t < 8; t++) {
      const prev = tables[t - 1][n];
      tables[t][n] = (prev >>> 8) ^ tables[0][prev & 0xff];
    }
  }
  return tables;
}

/** CRC-32 of `bytes`; pass the CRC of the preceding bytes as `previous` to continue a running one. */
export function crc32(bytes: Uint8Array, previous = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES;
  let c = ~previous;
  let i = 0;
  const end8 = bytes.length - (bytes.length & 7);
  for (; i < end8; i += 8) {
    const lo = c ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    c =
      t7[lo & 0xff] ^
      t6[(lo >>> 8) & 0xff] ^
      t5[(lo >>> 16) & 0xff] ^
      t4[lo >>> 24] ^
      t3[bytes[i + 4]] ^
      t2[bytes[i + 5]] ^
      t1[bytes[i + 6]] ^
      t0[bytes[i + 7]];
  }
  for (; i < bytes.length; i++) c = (c >>> 8) ^ t0[(c ^ bytes[i]) & 0xff];
  return ~c >>> 0;
}

/**
 * CRC-32 of A followed by B, from crc(A), crc(B) and B's length (zlib's `crc32_combine`).
 * Lets a reader check a record's CRC and the whole-file CRC with one pass over the payload.
 */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  return (multiplyModP(xPow8nModP(lengthB), crcA) ^ crcB) >>> 0;
}

/** a(x)·b(x) modulo the CRC polynomial, in the reflected bit order. */
function multiplyModP(a: number, b: number): number {
  let product = 0;
  for (let m = 0x80000000; m !== 0; m >>>= 1) {
    if (a & m) product ^= b;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return product;
}

/** x^(2^k) mod p for k = 0..31, by repeated squaring of x (0x40000000 in reflected order). */
const X_POW_2K = (() => {
  const table = new Int32Array(32);
  let p = 0x40000000;
  for (let k = 0; k < 32; k++) {
    table[k] = p;
    p = multiplyModP(p, p);
  }
  return table;
})();

/** x^(8n) mod p: appending n zero bytes multiplies a CRC by this. */
function xPow8nModP(n: number): number {
  let p = 0x80000000; // x^0
  for (let k = 3; n > 0; n = Math.floor(n / 2), k++) {
    if (n % 2) p = multiplyModP(X_POW_2K[k & 31], p);
  }
  return p;
}
