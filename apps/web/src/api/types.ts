export interface User {
  id: number;
  email: string;
  is_admin: boolean;
}

export interface LoginResponse {
  user: User;
  csrf_token: string;
}

export interface Vehicle {
  id: number;
  name: string;
  vin: string | null;
  created_at: string;
  last_seen_at: string | null;
}

export interface DeviceStatus {
  ts?: number;
  agent_version?: string;
  adapter_state?: string;
  adapter_detail?: string;
  protocol?: string | null;
  vin?: string | null;
  battery_voltage?: number | null;
  spool_backlog?: number;
  spool_dropped?: number;
  last_upload_ts?: number | null;
  sample_rate?: number;
}

export interface Device {
  id: number;
  vehicle_id: number;
  name: string;
  token_prefix: string;
  created_at: string;
  revoked_at: string | null;
  last_seen_at: string | null;
  agent_version: string | null;
  status: DeviceStatus | null;
}

export interface DeviceCreated extends Device {
  token: string;
}

export interface History {
  pid: string;
  source: "raw" | "rollup";
  bucket_ms: number;
  points: Array<[number, number]>;
  min: number[];
  max: number[];
  count: number[];
}

export interface Sample {
  seq: number;
  ts: number;
  pid: string;
  value: number;
}

export interface Dtc {
  code: string;
  kind: string;
  description: string | null;
  first_seen: string | number;
  last_seen: string | number;
  cleared_at: string | number | null;
}

/** /healthz and /readyz: "status", "version", "git_sha", one key per check, "errors". */
export interface HealthReport {
  status: string;
  version?: string;
  git_sha?: string | null;
  errors?: Record<string, string>;
  [check: string]: unknown;
}
