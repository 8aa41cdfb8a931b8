{{/*
datamigrate-operator.name: the chart name, or nameOverride. Kubernetes names and label values
are limited to 63 characters, so it is truncated there (and a trailing "-" removed).
*/}}
{{- define "datamigrate-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
datamigrate-operator.fullname: the prefix of every object name. fullnameOverride wins;
otherwise "<release>-<name>", or the release name alone when it already contains the name.
Truncated to 63 characters because some name fields (Services, labels) allow no more.
*/}}
{{- define "datamigrate-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
datamigrate-operator.namespace: where the namespaced objects go (namespaceOverride or the
release namespace).
*/}}
{{- define "datamigrate-operator.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
datamigrate-operator.chart: "<chart>-<version>" for the helm.sh/chart label ("+" is not
allowed in label values).
*/}}
{{- define "datamigrate-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
datamigrate-operator.selectorLabels: only name and instance. Selectors are immutable once a
Deployment exists, so version, component or user labels must never reach them.
*/}}
{{- define "datamigrate-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "datamigrate-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
datamigrate-operator.labels: the standard labels of every object: selector labels plus
version, managed-by, chart, component and commonLabels.
*/}}
{{- define "datamigrate-operator.labels" -}}
{{ include "datamigrate-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: datamigrate
helm.sh/chart: {{ include "datamigrate-operator.chart" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
datamigrate-operator.serviceAccountName: the controller's ServiceAccount (serviceAccount.name,
or the full name when the chart creates it).
*/}}
{{- define "datamigrate-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "datamigrate-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- $msg := "serviceAccount.name is required when serviceAccount.create is false" }}
{{- required $msg .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
datamigrate-operator.image: an image reference from a {registry, repository, tag, digest}
map. Call with (dict "image" .Values.image "root" $). global.imageRegistry, when set, wins
over the image's own registry (a mirror for everything); the tag falls back to the chart's
appVersion; a digest wins over the tag.
*/}}
{{- define "datamigrate-operator.image" -}}
{{- $registry := default .image.registry .root.Values.global.imageRegistry }}
{{- $repo := .image.repository }}
{{- if $registry }}
{{- $repo = printf "%s/%s" $registry .image.repository }}
{{- end }}
{{- if .image.digest }}
{{- printf "%s@%s" $repo .image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (default .root.Chart.AppVersion .image.tag) }}
{{- end }}
{{- end }}

{{/*
datamigrate-operator.leaderElect: "true" when the controller must run leader election
(more than one replica, or leaderElection.enabled), else "".
*/}}
{{- define "datamigrate-operator.leaderElect" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) }}true{{- end }}
{{- end }}

{{/*
datamigrate-operator.workPodNamespaces: the namespaces where work pods run, as a JSON list
(networkPolicy.workPods.namespaces, else watchNamespaces, else the release namespace).
*/}}
{{- define "datamigrate-operator.workPodNamespaces" -}}
{{- $ns := .Values.networkPolicy.workPods.namespaces }}
{{- if not $ns }}
{{- $ns = .Values.watchNamespaces }}
{{- end }}
{{- if not $ns }}
{{- $ns = list (include "datamigrate-operator.namespace" .) }}
{{- end }}
{{- toJson $ns }}
{{- end }}

{{/*
datamigrate-operator.probeTimings: the timing fields of a probe from a values map with
initialDelaySeconds, periodSeconds, timeoutSeconds and failureThreshold.
*/}}
{{- define "datamigrate-operator.probeTimings" -}}
initialDelaySeconds: {{ .initialDelaySeconds }}
periodSeconds: {{ .periodSeconds }}
timeoutSeconds: {{ .timeoutSeconds }}
failureThreshold: {{ .failureThreshold }}
{{- end }}

{{/*
datamigrate-operator.egressCommon: egress rules shared by the controller and the work pods:
DNS (when networkPolicy.dns.enabled) and the API server (its CIDRs, or any address, on its
ports).
*/}}
{{- define "datamigrate-operator.egressCommon" -}}
{{- $np := .Values.networkPolicy }}
{{- if $np.dns.enabled }}
- to:
    - namespaceSelector:
        {{- toYaml $np.dns.namespaceSelector | nindent 8 }}
      podSelector:
        {{- toYaml $np.dns.podSelector | nindent 8 }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end }}
- ports:
    {{- range $np.apiServer.ports }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
  {{- with $np.apiServer.cidrs }}
  to:
    {{- range . }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  {{- end }}
{{- end }}

{{/*
datamigrate-operator.workPodSelector: selects the step pods by the labels the operator puts on
them (src/job.rs: managed-by datamigrate-operator, and a datamigrate.ai/step label).
*/}}
{{- define "datamigrate-operator.workPodSelector" -}}
matchLabels:
  app.kubernetes.io/managed-by: datamigrate-operator
matchExpressions:
  - key: datamigrate.ai/step
    operator: Exists
{{- end }}
