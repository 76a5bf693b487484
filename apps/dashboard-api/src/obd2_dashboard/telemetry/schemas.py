from typing import Annotated, Literal

from pydantic import BaseModel, Field


class History(BaseModel):
    pid: str
    source: Annotated[
        Literal["raw", "rollup"], Field(description="raw rows, or per-minute rollups")
    ]
    bucket_ms: Annotated[int, Field(description="width of each time bucket")]
    points: Annotated[
        list[tuple[int, float]], Field(description="[bucket start ms, average] in time order")
    ]
    min: Annotated[list[float], Field(description="minimum of each bucket, aligned with points")]
    max: Annotated[list[float], Field(description="maximum of each bucket, aligned with points")]
    count: Annotated[list[int], Field(description="samples in each bucket")]
