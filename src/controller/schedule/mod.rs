//! The `RedisBackupSchedule` controller's pure core (`../shared/spec/redisbackup.md`): [`cron`]
//! (the expression and its slots in a time zone), [`plan`] (the backup to create, the ones to
//! prune, the status) and [`status`] (the conditions).

pub mod cron;
pub mod plan;
pub mod status;
