/**
 * The ONNX protobuf: the subset of onnx/onnx.proto (field numbers as there) that describes a
 * single inference graph, decoded to plain objects with snake_case names as in the .proto.
 * Fields outside the subset (doc strings, training info, functions, metadata) are skipped when
 * decoding, as protobuf skips every unknown field.
 */
import protobuf from 'protobufjs';

const SCHEMA = `
syntax = "proto2";
package onnx;
message ModelProto {
  optional int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional GraphProto graph = 7;
}
message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}
message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  optional string domain = 7;
  repeated AttributeProto attribute = 5;
}
message AttributeProto {
  optional string name = 1;
  optional int32 type = 20;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  repeated float floats = 7;
  repeated int64 ints = 8;
}
message TensorProto {
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated int64 int64_data = 7 [packed = true];
  optional string name = 8;
  optional bytes raw_data = 9;
  repeated StringStringEntryProto external_data = 13;
  optional int32 data_location = 14;
}
message StringStringEntryProto {
  optional string key = 1;
  optional string value = 2;
}
message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
}
message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
}
message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
  }
  repeated Dimension dim = 1;
}
`;

/** TensorProto.DataType values. */
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7 } as const;

/** TensorProto.DataLocation.EXTERNAL */
export const EXTERNAL_DATA = 1;

export interface OnnxTensor {
  dims: number[];
  data_type: number;
  name: string;
  float_data: number[];
  int32_data: number[];
  int64_data: number[];
  raw_data: Uint8Array;
  external_data: { key: string; value: string }[];
  data_location: number;
}

export interface OnnxAttribute {
  name: string;
  type: number;
  f: number;
  i: number;
  s: Uint8Array;
  t: OnnxTensor | null;
  floats: number[];
  ints: number[];
}

export interface OnnxNode {
  input: string[];
  output: string[];
  name: string;
  op_type: string;
  domain: string;
  attribute: OnnxAttribute[];
}

export interface OnnxDimension {
  dim_value?: number;
  dim_param?: string;
}

export interface OnnxValueInfo {
  name: string;
  type: { tensor_type?: { elem_type: number; shape: { dim: OnnxDimension[] } | null } } | null;
}

export interface OnnxGraph {
  node: OnnxNode[];
  name: string;
  initializer: OnnxTensor[];
  input: OnnxValueInfo[];
  output: OnnxValueInfo[];
}

export interface OnnxModel {
  ir_version: number;
  opset_import: { domain: string; version: number }[];
  producer_name: string;
  producer_version: string;
  graph: OnnxGraph | null;
}

const ModelProto = protobuf.parse(SCHEMA, { keepCase: true }).root.lookupType('onnx.ModelProto');

/** Throws whatever protobufjs throws on bytes that are not a ModelProto. */
export function decodeOnnxModel(bytes: Uint8Array): OnnxModel {
  // int64 fields as numbers (dims and attributes are far below 2^53); every field present.
  return ModelProto.toObject(ModelProto.decode(bytes), { longs: Number, arrays: true, defaults: true }) as OnnxModel;
}

/** Fields may be left out; they take the protobuf defaults. */
export type OnnxModelInit = DeepPartial<OnnxModel>;
type DeepPartial<T> = T extends Uint8Array
  ? T
  : T extends (infer E)[]
    ? DeepPartial<E>[]
    : T extends object
      ? { [K in keyof T]?: DeepPartial<T[K]> }
      : T;

export function encodeOnnxModel(model: OnnxModelInit): Uint8Array {
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}
