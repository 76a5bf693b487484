from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, field_validator

# Ids are BIGINTs, but any bigger than 2**53 - 1 would be rounded by a JSON reader that parses
# numbers as floats (JavaScript, and the OpenAPI document's own bounds): anything bigger is a 422,
# never a database overflow nor an id a client cannot repeat exactly.
MAX_ID = 2**53 - 1

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


def _check_text(value: Any) -> None:
    # JSON may carry "\u0000" and unpaired surrogates ("\ud800"): neither can be stored (Postgres
    # text refuses NUL, UTF-8 has no surrogates), so they are a 422 here, not a 500 at the database.
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError("text is not valid Unicode (unpaired surrogate)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_text(item)


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    @field_validator("*", mode="before")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        _check_text(value)
        return value


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """The body of every 4xx and 5xx answer."""

    detail: str
    errors: Annotated[list[ErrorItem] | None, Field(default=None)] = None


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorResponse} for code in codes}


def request_body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` that documents a JSON body a handler parses itself, its schema inlined."""
    schema = model.model_json_schema()
    definitions: dict[str, Any] = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(definitions[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline(schema)}},
        }
    }
