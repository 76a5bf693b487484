from pydantic import BaseModel


class ImportSummaryRead(BaseModel):
    format: str
    samples_read: int
    stored: int
    duplicates: int
    skipped_rows: dict[str, int]
    skipped_values: dict[str, int]
    unknown_columns: list[str]
    first_ts: int | None
    last_ts: int | None
    dry_run: bool
    seconds: float
