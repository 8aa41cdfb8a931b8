//! DataMigrate: the Migration operator, its CRD and its step builders.
