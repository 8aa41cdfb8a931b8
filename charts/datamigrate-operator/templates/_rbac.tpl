{{/*
datamigrate-operator.controllerRules: what the controller needs in every namespace it watches.
Per Migration it creates Jobs, the `<mig>-workspace` PVC, the `<mig>-progress` ConfigMap, the
`<mig>-agent` ServiceAccount and a Role plus RoleBinding granting that ServiceAccount
get/patch/update on its own ConfigMap. Kubernetes lets it create that Role and RoleBinding
without `escalate` or `bind` because it holds those ConfigMap verbs itself. Secrets: `get` only,
by name, for the Secrets a Migration references; never list or watch, so the controller does
not cache every Secret of the cluster.
*/}}
{{- define "datamigrate-operator.controllerRules" -}}
- apiGroups: ["datamigrate.ai"]
  resources: ["migrations"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["datamigrate.ai"]
  resources: ["migrations/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["datamigrate.ai"]
  resources: ["migrations/finalizers"]
  verbs: ["update"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: [""]
  resources: ["persistentvolumeclaims", "configmaps", "serviceaccounts"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
