{{/* Names: <release>-blog-platform, or the release name when it already says so. */}}
{{- define "bp.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "bp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* A component's name: (dict "root" $ "component" "auth"). */}}
{{- define "bp.componentName" -}}
{{- printf "%s-%s" (include "bp.fullname" .root) .component -}}
{{- end -}}

{{/* Labels that select a component's pods (never change: selectors are immutable). */}}
{{- define "bp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bp.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "bp.labels" -}}
{{ include "bp.selectorLabels" . }}
app.kubernetes.io/part-of: blog-platform
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* A service's DNS name (headless: resolves to every ready pod). */}}
{{- define "bp.serviceHost" -}}
{{- printf "%s.%s.svc.%s" (include "bp.componentName" .) .root.Release.Namespace .root.Values.clusterDomain -}}
{{- end -}}

{{/* The Secret the services read. */}}
{{- define "bp.secretName" -}}
{{- default .Values.secrets.name .Values.secrets.existingSecret -}}
{{- end -}}

{{/* A dependency's full name, as its chart computes it: (dict "root" $ "chart" "nats"). */}}
{{- define "bp.depFullname" -}}
{{- $values := index .root.Values .chart -}}
{{- if $values.fullnameOverride -}}
{{- $values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .chart $values.nameOverride -}}
{{- if contains $name .root.Release.Name -}}
{{- .root.Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .root.Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Pod labels of a dependency's servers (those its chart puts on them). */}}
{{- define "bp.depSelector" -}}
{{- $values := index .root.Values .chart -}}
app.kubernetes.io/name: {{ default .chart $values.nameOverride }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if eq .chart "nats" }}
app.kubernetes.io/component: nats
{{- end }}
{{- end -}}

{{/* NATS_URL: every server of the bundled cluster, or the external list. */}}
{{- define "bp.natsURL" -}}
{{- if .Values.nats.enabled -}}
{{- $fn := include "bp.depFullname" (dict "root" . "chart" "nats") -}}
{{- $urls := list -}}
{{- $n := ternary (int .Values.nats.config.cluster.replicas) 1 (.Values.nats.config.cluster.enabled | default false) -}}
{{- range $i := until $n -}}
{{- $urls = append $urls (printf "nats://%s-%d.%s-headless.%s.svc.%s:4222" $fn $i $fn $.Release.Namespace $.Values.clusterDomain) -}}
{{- end -}}
{{- join "," $urls -}}
{{- else -}}
{{- required "externalNats.urls is required when nats.enabled is false" (join "," .Values.externalNats.urls) -}}
{{- end -}}
{{- end -}}

{{/* Redis mode: sentinel, cluster or single. */}}
{{- define "bp.redisMode" -}}
{{- if .Values.redis.enabled -}}
{{- ternary "sentinel" "single" (and (eq .Values.redis.architecture "replication") .Values.redis.sentinel.enabled) -}}
{{- else -}}
{{- $m := .Values.externalRedis.mode -}}
{{- if not (has $m (list "sentinel" "cluster" "single")) -}}
{{- fail (printf "externalRedis.mode %q: must be sentinel, cluster or single" $m) -}}
{{- end -}}
{{- $m -}}
{{- end -}}
{{- end -}}

{{/* The Redis environment of a service: (dict "root" $ "svc" .Values.auth). */}}
{{- define "bp.redisEnv" -}}
{{- $root := .root -}}
{{- $mode := include "bp.redisMode" $root -}}
{{- if $root.Values.redis.enabled -}}
{{- $fn := include "bp.depFullname" (dict "root" $root "chart" "redis") -}}
{{- if eq $mode "sentinel" -}}
{{- $addrs := list -}}
{{- range $i := until (int $root.Values.redis.replica.replicaCount) -}}
{{- $addrs = append $addrs (printf "%s-node-%d.%s-headless.%s.svc.%s:26379" $fn $i $fn $root.Release.Namespace $root.Values.clusterDomain) -}}
{{- end }}
- name: REDIS_SENTINEL_ADDRS
  value: {{ join "," $addrs | quote }}
- name: REDIS_SENTINEL_MASTER
  value: {{ $root.Values.redis.sentinel.masterSet | quote }}
- name: REDIS_SENTINEL_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ include "bp.secretName" $root }}, key: redis-password}
{{- else }}
- name: REDIS_HOST
  value: {{ printf "%s-master.%s.svc.%s" $fn $root.Release.Namespace $root.Values.clusterDomain | quote }}
- name: REDIS_PORT
  value: "6379"
{{- end }}
{{- else if eq $mode "sentinel" }}
- name: REDIS_SENTINEL_ADDRS
  value: {{ required "externalRedis.sentinelAddrs is required with mode sentinel" (join "," $root.Values.externalRedis.sentinelAddrs) | quote }}
- name: REDIS_SENTINEL_MASTER
  value: {{ required "externalRedis.sentinelMaster is required with mode sentinel" $root.Values.externalRedis.sentinelMaster | quote }}
- name: REDIS_SENTINEL_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ include "bp.secretName" $root }}, key: redis-password}
{{- else if eq $mode "cluster" }}
- name: REDIS_CLUSTER_ADDRS
  value: {{ required "externalRedis.clusterAddrs is required with mode cluster" (join "," $root.Values.externalRedis.clusterAddrs) | quote }}
{{- /* Redis Cluster has database 0 only. */}}
- name: REDIS_DB
  value: "0"
{{- else }}
- name: REDIS_HOST
  value: {{ required "externalRedis.host is required with mode single" $root.Values.externalRedis.host | quote }}
- name: REDIS_PORT
  value: {{ $root.Values.externalRedis.port | quote }}
{{- end }}
- name: REDIS_USERNAME
  value: {{ .svc.redisUsername | quote }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ include "bp.secretName" $root }}, key: {{ printf "redis-%s-password" .component }}}
{{- end -}}

{{/* Image reference. */}}
{{- define "bp.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{/* Spread a component's pods over nodes (hard) and zones (soft). */}}
{{- define "bp.topologySpread" -}}
{{- $t := .root.Values.common.topologySpread -}}
- maxSkew: {{ $t.nodeSkew }}
  topologyKey: kubernetes.io/hostname
  whenUnsatisfiable: {{ $t.nodeWhenUnsatisfiable }}
  labelSelector:
    matchLabels:
      {{- include "bp.selectorLabels" . | nindent 6 }}
  matchLabelKeys: [pod-template-hash]
- maxSkew: {{ $t.zoneSkew }}
  topologyKey: topology.kubernetes.io/zone
  whenUnsatisfiable: {{ $t.zoneWhenUnsatisfiable }}
  labelSelector:
    matchLabels:
      {{- include "bp.selectorLabels" . | nindent 6 }}
  matchLabelKeys: [pod-template-hash]
{{- end -}}
