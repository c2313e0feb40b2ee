// The geometry that every hand-built conv layer in the tests spells out, float or int8.

/**
 * A square k x k conv layer's geometry, tensor `input` to tensor `output` (0 to 1 by default), 1x1
 * stride 1 unpadded unless said: spread its weights, bias, relu (and int8 multipliers) over it.
 */
export function convGeometry(
  name: string,
  cin: number,
  cout: number,
  { k = 1, stride = 1, pad = 0, input = 0, output = 1 } = {},
) {
  return { kind: 'conv' as const, name, input, output, kh: k, kw: k, stride, pad, cin, cout };
}
