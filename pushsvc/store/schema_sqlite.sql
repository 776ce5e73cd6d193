-- The appliance's schema (docs/appliance-schema.md) for the embedded SQLite store.
-- Same tables, column names, defaults, indexes and cascades as the MariaDB DDL;
-- ENUMs become CHECK constraints, ON UPDATE a trigger, and times are stored as
-- 'YYYY-MM-DD HH:MM:SS[.fff]' text in the appliance's local zone (as MariaDB
-- shows them). Needs PRAGMA foreign_keys = ON, which the store sets.

CREATE TABLE vm_replication_contexts (
  context_id TEXT NOT NULL PRIMARY KEY,
  vm_name TEXT NOT NULL,
  vmware_vm_id TEXT NOT NULL,
  vm_path TEXT NOT NULL,
  vcenter_host TEXT NOT NULL,
  datacenter TEXT NOT NULL,
  current_status TEXT NOT NULL DEFAULT 'discovered' CHECK (current_status IN
    ('discovered','replicating','ready_for_failover','failed_over_test','failed_over_live','completed','failed','cleanup_required')),
  current_job_id TEXT DEFAULT NULL REFERENCES replication_jobs (id) ON DELETE SET NULL,
  total_jobs_run INTEGER DEFAULT 0,
  successful_jobs INTEGER DEFAULT 0,
  failed_jobs INTEGER DEFAULT 0,
  last_successful_job_id TEXT DEFAULT NULL REFERENCES replication_jobs (id) ON DELETE SET NULL,
  cpu_count INTEGER DEFAULT NULL,
  memory_mb INTEGER DEFAULT NULL,
  os_type TEXT DEFAULT NULL,
  power_state TEXT DEFAULT NULL,
  vm_tools_version TEXT DEFAULT NULL,
  created_at TEXT NOT NULL DEFAULT (datetime('now', 'localtime')),
  updated_at TEXT NOT NULL DEFAULT (datetime('now', 'localtime')),
  first_job_at TEXT DEFAULT NULL,
  last_job_at TEXT DEFAULT NULL,
  last_status_change TEXT NOT NULL DEFAULT (datetime('now', 'localtime')),
  auto_added INTEGER DEFAULT 0,
  scheduler_enabled INTEGER DEFAULT 1,
  next_scheduled_at TEXT DEFAULT NULL,
  last_scheduled_job_id TEXT DEFAULT NULL,
  credential_id INTEGER DEFAULT NULL,
  ossea_config_id INTEGER DEFAULT NULL,
  last_operation_summary TEXT DEFAULT NULL CHECK (last_operation_summary IS NULL OR json_valid(last_operation_summary)),
  UNIQUE (vm_name, vcenter_host),
  UNIQUE (vmware_vm_id, vcenter_host)
);
CREATE INDEX idx_current_status ON vm_replication_contexts (current_status);
CREATE INDEX idx_current_job_id ON vm_replication_contexts (current_job_id);
CREATE INDEX idx_last_successful_job_id ON vm_replication_contexts (last_successful_job_id);

-- MariaDB's ON UPDATE current_timestamp(): bump updated_at when a row really
-- changes and the writer did not set updated_at itself.
CREATE TRIGGER vm_replication_contexts_on_update
AFTER UPDATE ON vm_replication_contexts
FOR EACH ROW
WHEN NEW.updated_at IS OLD.updated_at AND (
  NEW.vm_name IS NOT OLD.vm_name OR NEW.vmware_vm_id IS NOT OLD.vmware_vm_id OR NEW.vm_path IS NOT OLD.vm_path
  OR NEW.vcenter_host IS NOT OLD.vcenter_host OR NEW.datacenter IS NOT OLD.datacenter
  OR NEW.current_status IS NOT OLD.current_status OR NEW.current_job_id IS NOT OLD.current_job_id
  OR NEW.total_jobs_run IS NOT OLD.total_jobs_run OR NEW.successful_jobs IS NOT OLD.successful_jobs
  OR NEW.failed_jobs IS NOT OLD.failed_jobs OR NEW.last_successful_job_id IS NOT OLD.last_successful_job_id
  OR NEW.cpu_count IS NOT OLD.cpu_count OR NEW.memory_mb IS NOT OLD.memory_mb OR NEW.os_type IS NOT OLD.os_type
  OR NEW.power_state IS NOT OLD.power_state OR NEW.vm_tools_version IS NOT OLD.vm_tools_version
  OR NEW.created_at IS NOT OLD.created_at OR NEW.first_job_at IS NOT OLD.first_job_at
  OR NEW.last_job_at IS NOT OLD.last_job_at OR NEW.last_status_change IS NOT OLD.last_status_change
  OR NEW.auto_added IS NOT OLD.auto_added OR NEW.scheduler_enabled IS NOT OLD.scheduler_enabled
  OR NEW.next_scheduled_at IS NOT OLD.next_scheduled_at OR NEW.last_scheduled_job_id IS NOT OLD.last_scheduled_job_id
  OR NEW.credential_id IS NOT OLD.credential_id OR NEW.ossea_config_id IS NOT OLD.ossea_config_id
  OR NEW.last_operation_summary IS NOT OLD.last_operation_summary)
BEGIN
  UPDATE vm_replication_contexts SET updated_at = datetime('now', 'localtime') WHERE context_id = NEW.context_id;
END;

CREATE TABLE replication_jobs (
  id TEXT NOT NULL PRIMARY KEY,
  vm_context_id TEXT DEFAULT NULL REFERENCES vm_replication_contexts (context_id) ON DELETE CASCADE,
  source_vm_id TEXT NOT NULL,
  source_vm_name TEXT NOT NULL,
  source_vm_path TEXT NOT NULL,
  v_center_host TEXT NOT NULL,
  datacenter TEXT NOT NULL,
  replication_type TEXT NOT NULL,
  status TEXT DEFAULT 'pending',
  progress_percent REAL DEFAULT 0,
  current_operation TEXT DEFAULT NULL,
  bytes_transferred INTEGER DEFAULT 0,
  total_bytes INTEGER DEFAULT 0,
  transfer_speed_bps INTEGER DEFAULT 0,
  error_message TEXT DEFAULT NULL,
  change_id TEXT DEFAULT NULL,
  previous_change_id TEXT DEFAULT NULL,
  snapshot_id TEXT DEFAULT NULL,
  nbd_port INTEGER DEFAULT NULL,
  nbd_export_name TEXT DEFAULT NULL,
  target_device TEXT DEFAULT NULL,
  vma_sync_type TEXT DEFAULT NULL,
  vma_current_phase TEXT DEFAULT NULL,
  vma_throughput_mbps NUMERIC DEFAULT 0.00,
  vma_eta_seconds INTEGER DEFAULT NULL,
  vma_last_poll_at TEXT DEFAULT NULL,
  setup_progress_percent NUMERIC DEFAULT 0.00,
  schedule_execution_id TEXT DEFAULT NULL,
  vm_group_id TEXT DEFAULT NULL,
  scheduled_by TEXT DEFAULT NULL,
  created_at TEXT DEFAULT NULL,
  updated_at TEXT DEFAULT NULL,
  started_at TEXT DEFAULT NULL,
  completed_at TEXT DEFAULT NULL
);
CREATE INDEX idx_replication_jobs_status_updated ON replication_jobs (status, updated_at);
CREATE INDEX idx_replication_jobs_vm_context ON replication_jobs (vm_context_id);

CREATE TABLE vm_disks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  vm_context_id TEXT DEFAULT NULL REFERENCES vm_replication_contexts (context_id) ON DELETE CASCADE,
  job_id TEXT DEFAULT NULL REFERENCES replication_jobs (id) ON DELETE CASCADE,
  disk_id TEXT NOT NULL,
  vm_dk_path TEXT NOT NULL,
  size_gb INTEGER NOT NULL,
  datastore TEXT DEFAULT NULL,
  unit_number INTEGER DEFAULT NULL,
  label TEXT DEFAULT NULL,
  capacity_bytes INTEGER DEFAULT NULL,
  provisioning_type TEXT DEFAULT NULL,
  ossea_volume_id INTEGER DEFAULT NULL,
  disk_change_id TEXT DEFAULT NULL,
  sync_status TEXT DEFAULT 'pending',
  sync_progress_percent REAL DEFAULT 0,
  bytes_synced INTEGER DEFAULT 0,
  cpu_count INTEGER DEFAULT 0,
  memory_mb INTEGER DEFAULT 0,
  os_type TEXT DEFAULT '',
  vm_tools_version TEXT DEFAULT '',
  network_config TEXT DEFAULT NULL,
  display_name TEXT DEFAULT '',
  annotation TEXT DEFAULT NULL,
  power_state TEXT DEFAULT '',
  vmware_uuid TEXT DEFAULT '',
  created_at TEXT DEFAULT NULL,
  updated_at TEXT DEFAULT NULL,
  UNIQUE (vm_context_id, disk_id)
);
CREATE INDEX idx_vm_disks_job_id ON vm_disks (job_id);

CREATE TABLE cbt_history (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  vm_context_id TEXT DEFAULT NULL REFERENCES vm_replication_contexts (context_id) ON DELETE CASCADE,
  job_id TEXT NOT NULL REFERENCES replication_jobs (id) ON DELETE CASCADE,
  disk_id TEXT NOT NULL,
  change_id TEXT NOT NULL,
  previous_change_id TEXT DEFAULT NULL,
  sync_type TEXT NOT NULL,
  blocks_changed INTEGER DEFAULT NULL,
  bytes_transferred INTEGER DEFAULT NULL,
  sync_duration_seconds INTEGER DEFAULT NULL,
  sync_success INTEGER DEFAULT 0,
  created_at TEXT DEFAULT NULL
);
CREATE INDEX idx_cbt_history_vm_context ON cbt_history (vm_context_id);
CREATE INDEX idx_cbt_history_job ON cbt_history (job_id);

CREATE TABLE ossea_volumes (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  vm_context_id TEXT DEFAULT NULL REFERENCES vm_replication_contexts (context_id) ON DELETE CASCADE,
  volume_id TEXT NOT NULL UNIQUE,
  volume_name TEXT NOT NULL,
  size_gb INTEGER NOT NULL,
  volume_type TEXT DEFAULT NULL,
  device_path TEXT DEFAULT NULL,
  status TEXT DEFAULT 'creating',
  created_at TEXT DEFAULT NULL,
  updated_at TEXT DEFAULT NULL
);
CREATE INDEX idx_ossea_volumes_vm_context ON ossea_volumes (vm_context_id);

CREATE TABLE device_mappings (
  id TEXT NOT NULL PRIMARY KEY,
  vm_context_id TEXT DEFAULT NULL REFERENCES vm_replication_contexts (context_id) ON DELETE CASCADE,
  volume_uuid TEXT NOT NULL UNIQUE,
  vm_id TEXT NOT NULL,
  operation_mode TEXT NOT NULL DEFAULT 'oma' CHECK (operation_mode IN ('oma','failover')),
  device_path TEXT NOT NULL UNIQUE,
  cloudstack_state TEXT DEFAULT NULL,
  linux_state TEXT DEFAULT NULL,
  size INTEGER DEFAULT NULL,
  created_at TEXT NOT NULL DEFAULT (datetime('now', 'localtime')),
  updated_at TEXT NOT NULL DEFAULT (datetime('now', 'localtime'))
);
CREATE INDEX idx_device_mappings_vm_context ON device_mappings (vm_context_id);

CREATE TABLE nbd_exports (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  vm_context_id TEXT DEFAULT NULL REFERENCES vm_replication_contexts (context_id) ON DELETE CASCADE,
  job_id TEXT DEFAULT NULL REFERENCES replication_jobs (id) ON DELETE CASCADE,
  vm_disk_id INTEGER DEFAULT NULL REFERENCES vm_disks (id) ON DELETE CASCADE,
  export_name TEXT NOT NULL UNIQUE,
  port INTEGER NOT NULL DEFAULT 10809,
  device_path TEXT NOT NULL,
  status TEXT DEFAULT 'pending',
  created_at TEXT DEFAULT NULL,
  updated_at TEXT DEFAULT NULL
);
CREATE INDEX idx_nbd_exports_vm_context ON nbd_exports (vm_context_id);
CREATE INDEX idx_nbd_exports_job ON nbd_exports (job_id);
CREATE INDEX idx_nbd_exports_vm_disk ON nbd_exports (vm_disk_id);
