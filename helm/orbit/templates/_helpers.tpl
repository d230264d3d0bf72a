{{/* Names and labels shared by every object. */}}
{{- define "orbit.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "orbit.fullname" -}}
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

{{- define "orbit.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "orbit.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component (web, worker, migrate). */}}
{{- define "orbit.selectorLabels" -}}
app.kubernetes.io/name: {{ include "orbit.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of a component's pods: its selector labels plus version and extras. */}}
{{- define "orbit.podLabels" -}}
{{ include "orbit.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{- with .root.Values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "orbit.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "orbit.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "orbit.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "orbit.secretName" -}}
{{- default (include "orbit.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* Environment of every Orbit container: the ConfigMap plus the Secret's keys. */}}
{{- define "orbit.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "orbit.fullname" . }}
env:
  {{- range $name, $key := dict "DATABASE_URL" "DATABASE_URL" "DATABASE_APP_URL" "DATABASE_APP_URL" "REDIS_URL" "REDIS_URL" "ORBIT_SECRET_KEY" "ORBIT_SECRET_KEY" }}
  - name: {{ $name }}
    valueFrom:
      secretKeyRef:
        name: {{ include "orbit.secretName" $ }}
        key: {{ $key }}
  {{- end }}
  {{- /* The Secret's keys stay STRIPE_*; Orbit reads them as ORBIT_STRIPE_*. */}}
  {{- range $name, $key := dict "ORBIT_STRIPE_SECRET_KEY" "STRIPE_SECRET_KEY" "ORBIT_STRIPE_WEBHOOK_SECRET" "STRIPE_WEBHOOK_SECRET" }}
  - name: {{ $name }}
    valueFrom:
      secretKeyRef:
        name: {{ include "orbit.secretName" $ }}
        key: {{ $key }}
        optional: true
  {{- end }}
{{- end }}

{{/* Writable paths on a read-only root filesystem. */}}
{{- define "orbit.volumeMounts" -}}
volumeMounts:
  - name: orbit-home
    mountPath: /var/lib/orbit
  - name: tmp
    mountPath: /tmp
{{- end }}

{{- define "orbit.volumes" -}}
volumes:
  - name: orbit-home
    emptyDir:
      sizeLimit: 256Mi
  - name: tmp
    emptyDir:
      sizeLimit: 512Mi
{{- end }}

{{/* Roll pods when configuration or the chart-made Secret changes. */}}
{{- define "orbit.checksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end }}

{{- define "orbit.topologySpread" -}}
{{- if .spread.enabled -}}
topologySpreadConstraints:
  {{- range $key := list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
  - maxSkew: {{ $.spread.maxSkew }}
    topologyKey: {{ $key }}
    whenUnsatisfiable: {{ $.spread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "orbit.selectorLabels" (dict "root" $.root "component" $.component) | nindent 8 }}
  {{- end }}
{{- end }}
{{- end }}
