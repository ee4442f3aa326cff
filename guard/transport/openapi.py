"""The OpenAPI 3.1 document of the HTTP/JSON API, made from the .proto's descriptors (never written by hand), so the
document cannot drift from the API: served at ``GET /v1/openapi.json``.

Types follow protobuf's JSON mapping: 64-bit integers as strings (numbers accepted), enums by name (numbers
accepted), ``Timestamp`` as RFC 3339, ``Duration`` as ``"1.5s"``, ``FieldMask`` as ``"a.b,c"``, maps as objects,
fields by their .proto names (the lowerCamelCase JSON names are accepted in requests too).
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from guard.v1 import guard_pb2 as pb

F = FieldDescriptor
_INTEGER = {F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32, F.TYPE_UINT32, F.TYPE_FIXED32}
_LONG = {F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64, F.TYPE_UINT64, F.TYPE_FIXED64}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
}
ERROR = {"type": "object", "required": ["code", "status", "message", "details"], "additionalProperties": False,
         "properties": {"code": {"type": "integer", "description": "the gRPC status code"},
                        "status": {"type": "string", "description": "its name, e.g. INVALID_ARGUMENT"},
                        "message": {"type": "string", "description": "what is wrong, starting with the field's name"},
                        "details": {"type": "array"}}}


def _scalar(field: FieldDescriptor) -> dict[str, Any]:
    if field.type == F.TYPE_MESSAGE:
        name = field.message_type.full_name
        return dict(_WELL_KNOWN[name]) if name in _WELL_KNOWN else {"$ref": f"#/components/schemas/{field.message_type.name}"}
    if field.type == F.TYPE_ENUM:
        return {"anyOf": [{"type": "string", "enum": [v.name for v in field.enum_type.values]}, {"type": "integer"}]}
    if field.type == F.TYPE_BOOL:
        return {"type": "boolean"}
    if field.type in _INTEGER:
        return {"type": "integer"}
    if field.type in _LONG:
        return {"type": ["string", "integer"], "pattern": "^-?[0-9]+$"}
    if field.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return {"type": ["number", "string"]}
    if field.type == F.TYPE_BYTES:
        return {"type": "string", "contentEncoding": "base64"}
    return {"type": "string"}


def _field(field: FieldDescriptor) -> dict[str, Any]:
    if field.type == F.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
        return {"type": "object", "additionalProperties": _scalar(field.message_type.fields_by_name["value"])}
    if field.is_repeated:
        return {"type": "array", "items": _scalar(field)}
    return _scalar(field)


def _message(descriptor: Descriptor, schemas: dict[str, Any]) -> None:
    if descriptor.name in schemas or descriptor.full_name in _WELL_KNOWN:
        return
    schemas[descriptor.name] = {"type": "object", "additionalProperties": False,
                                "properties": {f.name: _field(f) for f in descriptor.fields}}
    for f in descriptor.fields:
        if f.type == F.TYPE_MESSAGE:
            target = f.message_type
            if target.GetOptions().map_entry:
                target = target.fields_by_name["value"].message_type
                if target is None:
                    continue
            _message(target, schemas)


def document(services: tuple[str, ...] = ("EngagementGuard", "RecoveryDesk")) -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": ERROR}
    paths: dict[str, Any] = {}
    for service in services:
        for m in pb.DESCRIPTOR.services_by_name[service].methods:
            if m.client_streaming or m.server_streaming:
                continue
            _message(m.input_type, schemas)
            _message(m.output_type, schemas)
            paths[f"/v1/{m.name}"] = {"post": {
                "operationId": m.name, "tags": [service],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": f"#/components/schemas/{m.input_type.name}"}}}},
                "responses": {
                    "200": {"description": "the answer (a DEFER or a BLOCK is an answer too)", "content": {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{m.output_type.name}"}}}},
                    "default": {"description": "the gRPC status mapped to HTTP", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}}
    return {"openapi": "3.1.0",
            "info": {"title": "guard", "version": "v1",
                     "description": "guard's EngagementGuard and RecoveryDesk over HTTP/JSON (POST /v1/<Method>), "
                                    "made from guard.proto"},
            "security": [{"bearer": []}], "paths": paths,
            "components": {"schemas": dict(sorted(schemas.items())),
                           "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}}}
