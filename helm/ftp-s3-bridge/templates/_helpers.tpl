{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "ftp-s3-bridge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart unless the release name already contains the chart name. */}}
{{- define "ftp-s3-bridge.fullname" -}}
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

{{- define "ftp-s3-bridge.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ftp-s3-bridge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ftp-s3-bridge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ftp-s3-bridge.labels" -}}
helm.sh/chart: {{ include "ftp-s3-bridge.chart" . }}
{{ include "ftp-s3-bridge.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "ftp-s3-bridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ftp-s3-bridge.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Ports the chart reads from .Values.config (see values.yaml). */}}
{{- define "ftp-s3-bridge.ftpPort" -}}
{{- dig "ftp" "port" 2121 (.Values.config | default dict) | int }}
{{- end }}

{{- define "ftp-s3-bridge.httpPort" -}}
{{- dig "http" "port" 9464 (.Values.config | default dict) | int }}
{{- end }}

{{/* The passive port range as a JSON list of port numbers; fails on a bad range. */}}
{{- define "ftp-s3-bridge.passivePorts" -}}
{{- $min := dig "ftp" "passive" "portMin" 30000 (.Values.config | default dict) | int }}
{{- $max := dig "ftp" "passive" "portMax" 30049 (.Values.config | default dict) | int }}
{{- if or (lt $min 1024) (gt $max 65535) (gt $min $max) }}
{{- fail (printf "config.ftp.passive: need 1024 <= portMin <= portMax <= 65535, got %d-%d" $min $max) }}
{{- end }}
{{- untilStep $min (add1 $max | int) 1 | toJson }}
{{- end }}

{{/* Is there an accounts file to mount? */}}
{{- define "ftp-s3-bridge.hasAccounts" -}}
{{- if or .Values.existingSecret .Values.accounts }}true{{ end }}
{{- end }}

{{/* Does the chart create its own Secret (inline accounts, S3 credentials and/or config secrets)? */}}
{{- define "ftp-s3-bridge.createSecret" -}}
{{- if or (and .Values.accounts (not .Values.existingSecret)) (include "ftp-s3-bridge.inlineS3Credentials" .) (include "ftp-s3-bridge.inlineConfigSecrets" .) }}true{{ end }}
{{- end }}

{{/*
The config secrets (values.yaml configSecrets) as a JSON list of [env var, inline value, key in
configSecrets.existingSecret, key in the chart's Secret]. The env var names are the server's
overrides (FTP_S3_BRIDGE__<path>) of the config keys they fill.
*/}}
{{- define "ftp-s3-bridge.configSecretItems" -}}
{{- $cs := .Values.configSecrets }}
{{- list
  (list "FTP_S3_BRIDGE__EVENTS__WEBHOOK__SECRET" $cs.webhookSecret $cs.webhookSecretKey "events-webhook-secret")
  (list "FTP_S3_BRIDGE__EVENTS__WEBHOOK__URL" $cs.webhookUrl $cs.webhookUrlKey "events-webhook-url")
  (list "FTP_S3_BRIDGE__AUTH__HOOK__URL" $cs.authHookUrl $cs.authHookUrlKey "auth-hook-url")
  | toJson }}
{{- end }}

{{- define "ftp-s3-bridge.inlineConfigSecrets" -}}
{{- if not .Values.configSecrets.existingSecret }}
{{- range include "ftp-s3-bridge.configSecretItems" . | fromJsonArray }}{{ if index . 1 }}true{{ end }}{{ end }}
{{- end }}
{{- end }}

{{/* The container's env entries for the config secrets, from configSecrets.existingSecret or the chart's Secret. */}}
{{- define "ftp-s3-bridge.configSecretEnv" -}}
{{- $existing := .Values.configSecrets.existingSecret }}
{{- $own := include "ftp-s3-bridge.fullname" . }}
{{- range include "ftp-s3-bridge.configSecretItems" . | fromJsonArray }}
{{- if and $existing (index . 2) }}
- name: {{ index . 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ $existing }}
      key: {{ index . 2 }}
      # A key the Secret does not hold leaves the setting to the config file.
      optional: true
{{- else if and (not $existing) (index . 1) }}
- name: {{ index . 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ $own }}
      key: {{ index . 3 }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Refuses secrets in .Values.config, which lands in a ConfigMap: events.webhook.secret, and webhook or
auth hook URLs with user info or a query (the server sends user info as Basic auth and redacts both
when it logs the config). They belong in configSecrets.
*/}}
{{- define "ftp-s3-bridge.refuseConfigSecrets" -}}
{{- $cfg := .Values.config | default dict }}
{{- if dig "events" "webhook" "secret" "" $cfg }}
{{- fail "config.events.webhook.secret would be stored in the ConfigMap: set configSecrets.webhookSecret (or a key of configSecrets.existingSecret) instead" }}
{{- end }}
{{- range $name, $url := dict "events.webhook.url" (dig "events" "webhook" "url" "" $cfg) "auth.hook.url" (dig "auth" "hook" "url" "" $cfg) }}
{{- if regexMatch "^[^:/?#]+://[^/?#]*@|[?]" (toString $url) }}
{{- fail (printf "config.%s has credentials (user info or a query) and would be stored in the ConfigMap: set it in configSecrets (webhookUrl / authHookUrl) instead" $name) }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ftp-s3-bridge.inlineS3Credentials" -}}
{{- if and (not .Values.s3Credentials.existingSecret) .Values.s3Credentials.accessKeyId }}true{{ end }}
{{- end }}

{{- define "ftp-s3-bridge.accountsSecretName" -}}
{{- default (include "ftp-s3-bridge.fullname" .) .Values.existingSecret }}
{{- end }}

{{- define "ftp-s3-bridge.accountsSecretKey" -}}
{{- if .Values.existingSecret }}{{ .Values.existingSecretKey }}{{ else }}accounts.yaml{{ end }}
{{- end }}

{{/*
The config file: .Values.config plus the paths of the files this chart mounts. These key names
must match the server's config schema (src/config/schema.ts, strict: unknown keys are refused);
.ci/run renders the chart and runs `check-config` on the result so that the two cannot drift.
*/}}
{{- define "ftp-s3-bridge.config" -}}
{{- include "ftp-s3-bridge.refuseConfigSecrets" . }}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- if include "ftp-s3-bridge.hasAccounts" . }}
{{- $auth := get $cfg "auth" | default dict }}
{{- $_ := set $auth "accountsFile" "/etc/ftp-s3-bridge/accounts.yaml" }}
{{- $_ := set $cfg "auth" $auth }}
{{- end }}
{{- $ftp := get $cfg "ftp" | default dict }}
{{- $passive := get $ftp "passive" | default dict }}
{{- if and (hasKey $passive "address") (not (get $passive "address")) }}
{{- $_ := unset $passive "address" }}
{{- end }}
{{- if .Values.tls.enabled }}
{{- $tls := get $ftp "tls" | default dict }}
{{- $_ := set $tls "cert" "/etc/ftp-s3-bridge/tls/tls.crt" }}
{{- $_ := set $tls "key" "/etc/ftp-s3-bridge/tls/tls.key" }}
{{- if .Values.tls.implicit.enabled }}
{{- $_ := set $tls "implicitPort" (.Values.tls.implicit.containerPort | int) }}
{{- end }}
{{- $_ := set $ftp "tls" $tls }}
{{- end }}
{{- if eq (include "ftp-s3-bridge.passiveMode" .) "perPod" }}
{{- $nodePort := eq .Values.passive.perPod.serviceType "NodePort" }}
{{- $byHostname := dict }}
{{- range include "ftp-s3-bridge.perPodPods" . | fromJsonArray }}
{{- $entry := dict }}
{{- if hasKey . "address" }}{{ $_ := set $entry "address" .address }}{{ end }}
{{- if $nodePort }}
{{- $_ := set $entry "portMin" (.portMin | int) }}
{{- $_ := set $entry "portMax" (.portMax | int) }}
{{- end }}
{{- $_ := set $byHostname .name $entry }}
{{- end }}
{{- $_ := set $passive "byHostname" $byHostname }}
{{- $_ := set $ftp "passive" $passive }}
{{- end }}
{{- with .Values.proxyProtocol.ftp }}
{{- $_ := set $ftp "proxyProtocol" (deepCopy .) }}
{{- end }}
{{- $_ := set $cfg "ftp" $ftp }}
{{- with .Values.proxyProtocol.sftp }}
{{- $sftp := get $cfg "sftp" | default dict }}
{{- $_ := set $sftp "proxyProtocol" (deepCopy .) }}
{{- $_ := set $cfg "sftp" $sftp }}
{{- end }}
{{- $redisValues := .Values.cluster.redis }}
{{- if $redisValues.existingSecret }}
{{- $cluster := get $cfg "cluster" | default dict }}
{{- $redis := get $cluster "redis" | default dict }}
{{- with $redisValues.keyPrefix }}{{ $_ := set $redis "keyPrefix" . }}{{ end }}
{{- $tls := deepCopy ($redisValues.tls | default dict) }}
{{- if $redisValues.caSecret }}{{ $_ := set $tls "ca" "/etc/ftp-s3-bridge/redis/ca.crt" }}{{ end }}
{{- if $tls }}{{ $_ := set $redis "tls" $tls }}{{ end }}
{{- /* The URL comes from the environment; an empty section here would only repeat that. */}}
{{- if $redis }}
{{- $_ := set $cluster "redis" $redis }}
{{- $_ := set $cfg "cluster" $cluster }}
{{- end }}
{{- end }}
{{- if .Values.sftp.enabled }}
{{- $sftp := get $cfg "sftp" | default dict }}
{{- $_ := set $sftp "enabled" true }}
{{- $_ := set $sftp "port" (.Values.sftp.containerPort | int) }}
{{- $files := list }}
{{- range .Values.sftp.hostKeys }}
{{- $files = append $files (printf "/etc/ftp-s3-bridge/ssh/%s" .) }}
{{- end }}
{{- $_ := set $sftp "hostKeys" $files }}
{{- $_ := set $cfg "sftp" $sftp }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* The drain timeout the server will use (the schema's default when unset). */}}
{{- define "ftp-s3-bridge.drainTimeoutSeconds" -}}
{{- dig "shutdown" "drainTimeoutSeconds" 300 (.Values.config | default dict) | int }}
{{- end }}

{{/* passive.mode, checked: service, perPod or hostPort. */}}
{{- define "ftp-s3-bridge.passiveMode" -}}
{{- $mode := dig "mode" "service" (.Values.passive | default dict) }}
{{- if not (has $mode (list "service" "perPod" "hostPort")) }}
{{- fail (printf "passive.mode must be service, perPod or hostPort, got %q" (toString $mode)) }}
{{- end }}
{{- $mode }}
{{- end }}

{{/*
passive.mode perPod: the StatefulSet's pods as a JSON list of { name, portMin, portMax, address? }.
With LoadBalancer every pod has the config's range (each has its own load balancer); with NodePort
pod i has the range shifted by i ranges, since a node port belongs to one Service in the whole
cluster. Fails on a bad service type or an address list that does not match the replicas.
*/}}
{{- define "ftp-s3-bridge.perPodPods" -}}
{{- $pp := .Values.passive.perPod }}
{{- $replicas := .Values.replicaCount | int }}
{{- $nodePort := eq $pp.serviceType "NodePort" }}
{{- if not (has $pp.serviceType (list "LoadBalancer" "NodePort")) }}
{{- fail (printf "passive.perPod.serviceType must be LoadBalancer or NodePort, got %q" (toString $pp.serviceType)) }}
{{- end }}
{{- if .Values.autoscaling.enabled }}
{{- fail "passive.mode perPod needs a fixed replicaCount (one address and Service per pod): set autoscaling.enabled=false" }}
{{- end }}
{{- $addresses := $pp.addresses | default list }}
{{- if and (or $addresses (not $nodePort)) (ne (len $addresses) $replicas) }}
{{- fail (printf "passive.perPod.addresses has %d entries for replicaCount %d: give one address per pod (pod i announces addresses[i])%s" (len $addresses) $replicas (ternary "" "; with serviceType NodePort it may be empty (each pod announces its node's address)" $nodePort)) }}
{{- end }}
{{- $perPodAnnotations := $pp.annotationsPerPod | default list }}
{{- if and $perPodAnnotations (ne (len $perPodAnnotations) $replicas) }}
{{- fail (printf "passive.perPod.annotationsPerPod has %d entries for replicaCount %d: one map per pod, or none" (len $perPodAnnotations) $replicas) }}
{{- end }}
{{- $ports := include "ftp-s3-bridge.passivePorts" . | fromJsonArray }}
{{- $min := first $ports | int }}
{{- $size := len $ports }}
{{- $pods := list }}
{{- range $i := until $replicas }}
{{- $lo := ternary (add $min (mul $i $size)) $min $nodePort | int }}
{{- $hi := add $lo $size -1 | int }}
{{- if gt $hi 65535 }}
{{- fail (printf "passive.perPod NodePort: pod %d's range %d-%d passes 65535: fewer replicas or a smaller ftp.passive range" $i $lo $hi) }}
{{- end }}
{{- $pod := dict "name" (printf "%s-%d" (include "ftp-s3-bridge.fullname" $) $i) "portMin" $lo "portMax" $hi }}
{{- if gt (len (printf "%s-passive" $pod.name)) 63 }}
{{- fail (printf "passive.perPod: the Service name %s-passive is longer than 63 characters: set a shorter fullnameOverride" $pod.name) }}
{{- end }}
{{- if $addresses }}
{{- $_ := set $pod "address" (toString (index $addresses $i)) }}
{{- end }}
{{- if $perPodAnnotations }}
{{- $_ := set $pod "annotations" (index $perPodAnnotations $i | default dict) }}
{{- end }}
{{- $pods = append $pods $pod }}
{{- end }}
{{- toJson $pods }}
{{- end }}

{{/* The passive ports the pods listen on (perPod NodePort: every pod's range), as a JSON list. */}}
{{- define "ftp-s3-bridge.containerPassivePorts" -}}
{{- if and (eq (include "ftp-s3-bridge.passiveMode" .) "perPod") (eq .Values.passive.perPod.serviceType "NodePort") }}
{{- $pods := include "ftp-s3-bridge.perPodPods" . | fromJsonArray }}
{{- untilStep (get (first $pods) "portMin" | int) (get (last $pods) "portMax" | int | add1 | int) 1 | toJson }}
{{- else }}
{{- include "ftp-s3-bridge.passivePorts" . }}
{{- end }}
{{- end }}

{{/*
The container's env entry for the announced passive address, when the pod takes it from its node:
hostPort mode, and perPod NodePort without addresses.
*/}}
{{- define "ftp-s3-bridge.passiveAddressEnv" -}}
{{- $mode := include "ftp-s3-bridge.passiveMode" . }}
{{- if or (eq $mode "hostPort") (and (eq $mode "perPod") (eq .Values.passive.perPod.serviceType "NodePort") (not .Values.passive.perPod.addresses)) }}
- name: FTP_S3_BRIDGE__FTP__PASSIVE__ADDRESS
  {{- if and (eq $mode "hostPort") .Values.passive.hostPort.address }}
  value: {{ .Values.passive.hostPort.address | quote }}
  {{- else }}
  valueFrom:
    fieldRef:
      fieldPath: status.hostIP
  {{- end }}
{{- end }}
{{- end }}

{{/* The container's env entry for the Redis URL (cluster.redis.existingSecret). */}}
{{- define "ftp-s3-bridge.redisEnv" -}}
{{- with .Values.cluster.redis.existingSecret }}
- name: FTP_S3_BRIDGE__CLUSTER__REDIS__URL
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ required "cluster.redis.urlKey is required with cluster.redis.existingSecret" $.Values.cluster.redis.urlKey }}
{{- end }}
{{- end }}
