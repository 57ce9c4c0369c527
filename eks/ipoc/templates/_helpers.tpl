{{- define "ipoc.labels" -}}
app.kubernetes.io/part-of: ipoc
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{- define "ipoc.ports" -}}
{{- if gt (int .Values.ports.first) (int .Values.ports.last) }}
{{- fail "ports.first must not be greater than ports.last" }}
{{- end }}
{{- untilStep (int .Values.ports.first) (int (add1 .Values.ports.last)) 1 | toJson }}
{{- end }}
