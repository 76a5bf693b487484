export interface User {
  id: number;
  email: string;
  is_admin: boolean;
}

export interface LoginResponse {
  user: User;
  csrf_token: string;
}

export interface VinInfo {
  wmi: string;
  maker: string | null;
  region: string | null;
  model_year: number | null;
}

export type VehicleState = "never_seen" | "live" | "stale" | "offline";
export type DeviceState = "connected" | "adapter_disconnected" | "engine_off" | "silent" | "revoked";

export interface Vehicle {
  id: number;
  name: string;
  vin: string | null;
  fuel_type?: "petrol" | "diesel";
  /** Who chose fuel_type: nobody (petrol), the user, or a Torque profile. */
  fuel_type_source?: "default" | "user" | "torque";
  profile_name?: string | null;
  weight_kg?: number | null;
  volumetric_efficiency_pct?: number | null;
  created_at: string;
  last_seen_at: string | null;
  /** The one state model (server's presence/state.py): the same words on every page. */
  state: VehicleState;
  /** When the vehicle entered its state. */
  state_since: string | null;
  /** viewer: shared with this user read-only. */
  role?: "owner" | "viewer";
  vin_info?: VinInfo | null;
  /** Alerts of the vehicle fired and not cleared yet. */
  open_alerts?: number;
}

export type PidSource = "obd" | "torque" | "agent" | "import";

/** A PID the server knows by name (GET /api/v1/pids). */
export interface PidEntry {
  name: string;
  display_name: string;
  short_name: string | null;
  /** The canonical unit of stored values: kph, degC, liters_per_hour…; "" for a count. */
  unit: string;
  source: PidSource;
  /** A name of the PID table (the ingest API and alert rules take these). */
  standard: boolean;
}

/** A PID a vehicle has sent (GET /api/v1/vehicles/{id}/pids). */
export interface VehiclePid extends PidEntry {
  /** The oldest sample's time; null while the device has only named the PID. */
  first_seen_ts: number | null;
}

/** Something a device told about the vehicle (Torque's notices). */
export interface VehicleEvent {
  id: number;
  ts: number;
  kind: string;
  event_class: string;
  message: string;
}

/** What an import of a log file read, stored and left out (POST /api/v1/vehicles/{id}/imports). */
export interface ImportSummary {
  format: "torque-csv" | "csv" | "gpx";
  samples_read: number;
  stored: number;
  duplicates: number;
  skipped_rows: Record<string, number>;
  skipped_values: Record<string, number>;
  unknown_columns: string[];
  first_ts: number | null;
  last_ts: number | null;
  dry_run: boolean;
  seconds: number;
}

export interface Share {
  user_id: number;
  email: string;
  created_at: string;
}

/** An invitation to a vehicle, as its owner sees it while it waits for an answer. */
export interface Invitation {
  id: number;
  email: string;
  created_at: string;
}

/** An invitation addressed to the signed-in user. */
export interface MyInvitation {
  id: number;
  vehicle_id: number;
  vehicle_name: string;
  invited_by: string;
  created_at: string;
}

export interface InvitationSent {
  detail: string;
  email: string;
}

export interface Trip {
  id: number;
  start_ts: number;
  end_ts: number;
  duration_s: number;
  distance_km: number;
  distance_source: "odometer" | "speed";
  moving_s: number;
  idle_s: number;
  max_speed_kmh: number | null;
  avg_speed_kmh: number | null;
  max_rpm: number | null;
  max_coolant_c: number | null;
  fuel_used_l: number | null;
  /** The first the car sent: FUEL_RATE, Torque's fuel flow, or MAF with the fuel type. */
  fuel_source: "FUEL_RATE" | "TORQUE_FUEL_FLOW" | "MAF" | null;
  economy_l_per_100km: number | null;
  track_points: number;
  /** false while the car may still be in use (the join gap has not passed since end_ts) */
  finished: boolean;
  /** Not finished and its vehicle live: being driven now. */
  in_progress: boolean;
}

export interface TripDetail extends Trip {
  charts: { bucket_ms: number; series: Record<string, Array<[number, number]>> };
}

export interface TripTrack {
  /** [epoch ms, latitude, longitude] in time order */
  points: Array<[number, number, number]>;
}

export interface TripTotals {
  from_ts: number;
  to_ts: number;
  trips: number;
  distance_km: number;
  driving_s: number;
  fuel_used_l: number | null;
}

export interface MapTiles {
  tile_url: string | null;
  attribution: string;
}

export type RuleKind = "threshold" | "silence" | "dtc";

export interface AlertRule {
  id: number;
  vehicle_id: number;
  name: string;
  kind: RuleKind;
  enabled: boolean;
  pid: string | null;
  op: "above" | "below" | null;
  threshold: number | null;
  clear_threshold: number | null;
  duration_s: number;
  while_parked: boolean;
  silence_minutes: number | null;
  device_id: number | null;
  cooldown_s: number;
  webhook_url: string | null;
  webhook_secret: string | null;
  mqtt: boolean;
  firing: boolean;
  /** threshold rules: the unit threshold and clear_threshold are stored in */
  unit?: string | null;
  /** threshold rules: the condition in the signed-in user's units */
  display?: RuleDisplay | null;
  /** Epoch ms from which samples count: the rule's creation, the last change of its condition or its resumption. */
  evaluated_from_ts?: number;
}

export interface RuleDisplay {
  unit: string;
  op: "above" | "below" | null;
  threshold: number | null;
  clear_threshold: number | null;
}

export interface AlertDelivery {
  channel: string;
  event: string;
  status: string;
  attempts: number;
  last_error: string | null;
}

export interface Alert {
  id: number;
  vehicle_id: number;
  rule_id: number | null;
  rule_name: string;
  kind: string;
  subject: string;
  /** The PID's display name, else subject. */
  subject_name?: string;
  /** In the reader's units, with the PID's display name. */
  message: string;
  value: number | null;
  started_ts: number;
  fired_ts: number;
  cleared_ts: number | null;
  acknowledged_at: string | null;
  deliveries: AlertDelivery[];
}

export interface Command {
  id: number;
  kind: string;
  created_at: string | null;
  completed_at: string | null;
  ok: boolean | null;
  detail: string | null;
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
  state: DeviceState;
  /** When the device entered its state. */
  state_since: string | null;
  status: DeviceStatus | null;
}

export interface DeviceCreated extends Device {
  token: string;
  /** The server's PUBLIC_URL; null when the operator has not set it. */
  api_url?: string | null;
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
  id?: number;
  code: string;
  kind: string;
  description: string | null;
  first_seen: string | number;
  last_seen: string | number;
  cleared_at: string | number | null;
  /** The PID values the car recorded when it stored the code (stored codes only). */
  freeze_frame?: FreezeFrame | null;
}

export interface FreezeFrame {
  dtc: string | null;
  values: Record<string, number>;
}

/** /healthz and /readyz: "status", "version", "git_sha", one key per check, "errors". */
/** A stored batch whose derived data (rollups, trips, alerts) the worker gave up on. */
export interface DeadLetter {
  id: number;
  vehicle_id: number;
  error: string;
  attempts: number;
  batch_stored_at: string;
  at: string;
}

export interface DeadLetterStatus {
  count: number;
  newest: DeadLetter[];
}

export interface HealthReport {
  status: string;
  version?: string;
  git_sha?: string | null;
  errors?: Record<string, string>;
  [check: string]: unknown;
}

export type UnitSystem = "metric" | "imperial_us" | "imperial_uk";

export interface Preferences {
  units: UnitSystem;
}

/** How a unit system shows a stored unit: scale/offset, or scale / value when inverse. */
export interface UnitConversion {
  unit: string;
  scale: number;
  offset: number;
  inverse: boolean;
}

export interface StoredUnit {
  unit: string;
  quantity: string;
  aliases: string[];
  /** Systems not named show the unit as stored. */
  systems: Partial<Record<UnitSystem, UnitConversion>>;
}

/** GET /api/v1/units: the server's unit table, the one copy of every conversion. */
export interface UnitTable {
  systems: Array<{ id: UnitSystem; label: string }>;
  units: StoredUnit[];
}
