-- The appliance's VM-centric schema (migratekit_oma, MariaDB 10.11), as pushsvc
-- needs it for tests, the demo and development. Column names, types, defaults,
-- ON UPDATE clauses, indexes and foreign keys with their cascades follow the
-- production dump described in docs/appliance-schema.md. pushsvc itself only reads.

CREATE TABLE vm_replication_contexts (
  context_id varchar(64) NOT NULL,
  vm_name varchar(255) NOT NULL,
  vmware_vm_id varchar(255) NOT NULL,
  vm_path varchar(500) NOT NULL,
  vcenter_host varchar(255) NOT NULL,
  datacenter varchar(255) NOT NULL,
  current_status enum('discovered','replicating','ready_for_failover','failed_over_test','failed_over_live','completed','failed','cleanup_required') NOT NULL DEFAULT 'discovered',
  current_job_id varchar(191) DEFAULT NULL,
  total_jobs_run int(11) DEFAULT 0,
  successful_jobs int(11) DEFAULT 0,
  failed_jobs int(11) DEFAULT 0,
  last_successful_job_id varchar(191) DEFAULT NULL,
  cpu_count int(11) DEFAULT NULL,
  memory_mb int(11) DEFAULT NULL,
  os_type varchar(255) DEFAULT NULL,
  power_state varchar(50) DEFAULT NULL,
  vm_tools_version varchar(255) DEFAULT NULL,
  created_at timestamp NOT NULL DEFAULT current_timestamp(),
  updated_at timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  first_job_at timestamp NULL DEFAULT NULL,
  last_job_at timestamp NULL DEFAULT NULL,
  last_status_change timestamp NOT NULL DEFAULT current_timestamp(),
  auto_added tinyint(1) DEFAULT 0,
  scheduler_enabled tinyint(1) DEFAULT 1,
  next_scheduled_at timestamp NULL DEFAULT NULL,
  last_scheduled_job_id varchar(191) DEFAULT NULL,
  credential_id int(11) DEFAULT NULL,
  ossea_config_id int(11) DEFAULT NULL,
  last_operation_summary longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL CHECK (json_valid(last_operation_summary)),
  PRIMARY KEY (context_id),
  UNIQUE KEY unique_vm_name_vcenter (vm_name, vcenter_host),
  UNIQUE KEY unique_vmware_vm_id_vcenter (vmware_vm_id, vcenter_host),
  KEY idx_current_status (current_status),
  KEY idx_current_job_id (current_job_id),
  KEY idx_last_successful_job_id (last_successful_job_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

CREATE TABLE replication_jobs (
  id varchar(191) NOT NULL,
  vm_context_id varchar(64) DEFAULT NULL,
  source_vm_id longtext NOT NULL,
  source_vm_name longtext NOT NULL,
  source_vm_path longtext NOT NULL,
  v_center_host longtext NOT NULL,
  datacenter longtext NOT NULL,
  replication_type longtext NOT NULL,
  status varchar(191) DEFAULT 'pending',
  progress_percent double DEFAULT 0,
  current_operation longtext DEFAULT NULL,
  bytes_transferred bigint(20) DEFAULT 0,
  total_bytes bigint(20) DEFAULT 0,
  transfer_speed_bps bigint(20) DEFAULT 0,
  error_message longtext DEFAULT NULL,
  change_id longtext DEFAULT NULL,
  previous_change_id longtext DEFAULT NULL,
  snapshot_id longtext DEFAULT NULL,
  nbd_port bigint(20) DEFAULT NULL,
  nbd_export_name longtext DEFAULT NULL,
  target_device longtext DEFAULT NULL,
  vma_sync_type varchar(50) DEFAULT NULL,
  vma_current_phase varchar(100) DEFAULT NULL,
  vma_throughput_mbps decimal(10,2) DEFAULT 0.00,
  vma_eta_seconds int(11) DEFAULT NULL,
  vma_last_poll_at timestamp NULL DEFAULT NULL,
  setup_progress_percent decimal(5,2) DEFAULT 0.00,
  schedule_execution_id varchar(64) DEFAULT NULL,
  vm_group_id varchar(64) DEFAULT NULL,
  scheduled_by varchar(255) DEFAULT NULL,
  created_at datetime(3) DEFAULT NULL,
  updated_at datetime(3) DEFAULT NULL,
  started_at datetime(3) DEFAULT NULL,
  completed_at datetime(3) DEFAULT NULL,
  PRIMARY KEY (id),
  KEY idx_replication_jobs_status_updated (status, updated_at),
  KEY idx_replication_jobs_vm_context (vm_context_id),
  CONSTRAINT fk_replication_jobs_vm_context FOREIGN KEY (vm_context_id)
    REFERENCES vm_replication_contexts (context_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

ALTER TABLE vm_replication_contexts
  ADD CONSTRAINT fk_vm_contexts_current_job FOREIGN KEY (current_job_id)
    REFERENCES replication_jobs (id) ON DELETE SET NULL,
  ADD CONSTRAINT fk_vm_contexts_last_successful_job FOREIGN KEY (last_successful_job_id)
    REFERENCES replication_jobs (id) ON DELETE SET NULL;

CREATE TABLE vm_disks (
  id bigint(20) NOT NULL AUTO_INCREMENT,
  vm_context_id varchar(64) DEFAULT NULL,
  job_id varchar(191) DEFAULT NULL,
  disk_id longtext NOT NULL,
  vm_dk_path longtext NOT NULL,
  size_gb bigint(20) NOT NULL,
  datastore longtext DEFAULT NULL,
  unit_number bigint(20) DEFAULT NULL,
  label longtext DEFAULT NULL,
  capacity_bytes bigint(20) DEFAULT NULL,
  provisioning_type longtext DEFAULT NULL,
  ossea_volume_id bigint(20) DEFAULT NULL,
  disk_change_id longtext DEFAULT NULL,
  sync_status varchar(191) DEFAULT 'pending',
  sync_progress_percent double DEFAULT 0,
  bytes_synced bigint(20) DEFAULT 0,
  cpu_count int(11) DEFAULT 0,
  memory_mb int(11) DEFAULT 0,
  os_type varchar(255) DEFAULT '',
  vm_tools_version varchar(255) DEFAULT '',
  network_config text DEFAULT NULL,
  display_name varchar(255) DEFAULT '',
  annotation text DEFAULT NULL,
  power_state varchar(50) DEFAULT '',
  vmware_uuid varchar(255) DEFAULT '',
  created_at datetime(3) DEFAULT NULL,
  updated_at datetime(3) DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY unique_vm_context_disk (vm_context_id, disk_id(191)),
  KEY idx_vm_disks_job_id (job_id),
  CONSTRAINT fk_vm_disks_vm_context FOREIGN KEY (vm_context_id)
    REFERENCES vm_replication_contexts (context_id) ON DELETE CASCADE,
  CONSTRAINT fk_vm_disks_job FOREIGN KEY (job_id)
    REFERENCES replication_jobs (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

CREATE TABLE cbt_history (
  id bigint(20) NOT NULL AUTO_INCREMENT,
  vm_context_id varchar(64) DEFAULT NULL,
  job_id varchar(191) NOT NULL,
  disk_id longtext NOT NULL,
  change_id longtext NOT NULL,
  previous_change_id longtext DEFAULT NULL,
  sync_type longtext NOT NULL,
  blocks_changed bigint(20) DEFAULT NULL,
  bytes_transferred bigint(20) DEFAULT NULL,
  sync_duration_seconds bigint(20) DEFAULT NULL,
  sync_success tinyint(1) DEFAULT 0,
  created_at datetime(3) DEFAULT NULL,
  PRIMARY KEY (id),
  KEY idx_cbt_history_vm_context (vm_context_id),
  KEY idx_cbt_history_job (job_id),
  CONSTRAINT fk_cbt_history_vm_context FOREIGN KEY (vm_context_id)
    REFERENCES vm_replication_contexts (context_id) ON DELETE CASCADE,
  CONSTRAINT fk_cbt_history_job FOREIGN KEY (job_id)
    REFERENCES replication_jobs (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

CREATE TABLE ossea_volumes (
  id bigint(20) NOT NULL AUTO_INCREMENT,
  vm_context_id varchar(64) DEFAULT NULL,
  volume_id varchar(191) NOT NULL,
  volume_name longtext NOT NULL,
  size_gb bigint(20) NOT NULL,
  volume_type longtext DEFAULT NULL,
  device_path longtext DEFAULT NULL,
  status varchar(191) DEFAULT 'creating',
  created_at datetime(3) DEFAULT NULL,
  updated_at datetime(3) DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uni_ossea_volumes_volume_id (volume_id),
  KEY idx_ossea_volumes_vm_context (vm_context_id),
  CONSTRAINT fk_ossea_volumes_vm_context FOREIGN KEY (vm_context_id)
    REFERENCES vm_replication_contexts (context_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

CREATE TABLE device_mappings (
  id varchar(64) NOT NULL,
  vm_context_id varchar(64) DEFAULT NULL,
  volume_uuid varchar(64) NOT NULL,
  vm_id varchar(64) NOT NULL,
  operation_mode enum('oma','failover') NOT NULL DEFAULT 'oma',
  device_path varchar(255) NOT NULL,
  cloudstack_state varchar(50) DEFAULT NULL,
  linux_state varchar(50) DEFAULT NULL,
  size bigint(20) DEFAULT NULL,
  created_at timestamp NOT NULL DEFAULT current_timestamp(),
  updated_at timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  PRIMARY KEY (id),
  UNIQUE KEY uk_volume_uuid (volume_uuid),
  UNIQUE KEY uk_device_path (device_path),
  KEY idx_device_mappings_vm_context (vm_context_id),
  CONSTRAINT fk_device_mappings_vm_context FOREIGN KEY (vm_context_id)
    REFERENCES vm_replication_contexts (context_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

CREATE TABLE nbd_exports (
  id bigint(20) NOT NULL AUTO_INCREMENT,
  vm_context_id varchar(64) DEFAULT NULL,
  job_id varchar(191) DEFAULT NULL,
  vm_disk_id bigint(20) DEFAULT NULL,
  export_name varchar(255) NOT NULL,
  port bigint(20) NOT NULL DEFAULT 10809,
  device_path longtext NOT NULL,
  status varchar(191) DEFAULT 'pending',
  created_at datetime(3) DEFAULT NULL,
  updated_at datetime(3) DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uni_nbd_exports_export_name (export_name),
  KEY idx_nbd_exports_vm_context (vm_context_id),
  KEY idx_nbd_exports_job (job_id),
  KEY idx_nbd_exports_vm_disk (vm_disk_id),
  CONSTRAINT fk_nbd_exports_vm_context FOREIGN KEY (vm_context_id)
    REFERENCES vm_replication_contexts (context_id) ON DELETE CASCADE,
  CONSTRAINT fk_nbd_exports_job FOREIGN KEY (job_id)
    REFERENCES replication_jobs (id) ON DELETE CASCADE,
  CONSTRAINT fk_nbd_exports_vm_disk FOREIGN KEY (vm_disk_id)
    REFERENCES vm_disks (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
