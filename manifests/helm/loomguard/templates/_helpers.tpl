{{/* Labels of every object. test/deploy drops the last three when it compares the
chart with the kustomize manifests. */}}
{{- define "loomguard.labels" -}}
app.kubernetes.io/name: loomguard
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "loomguard.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default (printf "v%s" .Chart.AppVersion) }}
{{- end }}

{{/* The namespaces both webhooks skip: loomguard's exempt namespaces. */}}
{{- define "loomguard.namespaceSelector" -}}
{{- if not (has .Release.Namespace .Values.config.exemptNamespaces) }}
{{- fail (printf "config.exemptNamespaces must contain the release namespace %q: loomguard must never guard its own namespace" .Release.Namespace) }}
{{- end }}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values:
        {{- toYaml .Values.config.exemptNamespaces | nindent 8 }}
{{- end }}

{{- define "loomguard.rules" -}}
rules:
  - apiGroups: [""]
    apiVersions: ["v1"]
    resources: [pods]
    operations: [CREATE, UPDATE]
    scope: Namespaced
  # kubectl debug adds an ephemeral container to a running Pod through this
  # subresource (docs/subresources.md).
  - apiGroups: [""]
    apiVersions: ["v1"]
    resources: [pods/ephemeralcontainers]
    operations: [UPDATE]
    scope: Namespaced
  - apiGroups: [apps]
    apiVersions: ["v1"]
    resources: [deployments, statefulsets, daemonsets, replicasets]
    operations: [CREATE, UPDATE]
    scope: Namespaced
  - apiGroups: [batch]
    apiVersions: ["v1"]
    resources: [jobs, cronjobs]
    operations: [CREATE, UPDATE]
    scope: Namespaced
{{- end }}

{{/* clientConfig of a webhook; the argument is (list . "/path"). */}}
{{- define "loomguard.clientConfig" -}}
{{- $root := index . 0 -}}
clientConfig:
  service:
    namespace: {{ $root.Release.Namespace }}
    name: loomguard
    port: 443
    path: {{ index . 1 }}
  {{- if and (eq $root.Values.certs.mode "files") $root.Values.webhooks.caBundle }}
  caBundle: {{ $root.Values.webhooks.caBundle }}
  {{- end }}
{{- end }}

{{- define "loomguard.webhookAnnotations" -}}
{{- if eq .Values.certs.mode "cert-manager" }}
annotations:
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/loomguard-serving
{{- end }}
{{- end }}

{{- define "loomguard.checkMode" -}}
{{- if not (has .Values.certs.mode (list "self-managed" "cert-manager" "files")) }}
{{- fail (printf "certs.mode %q: want self-managed, cert-manager or files" .Values.certs.mode) }}
{{- end }}
{{- end }}
