{{/* The name of every object: the release, with "cdcd" unless it says so already. */}}
{{- define "cdcd.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "cdcd.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "cdcd.secretName" -}}
{{- default (include "cdcd.fullname" .) .Values.secret.existingSecret -}}
{{- end -}}

{{/*
The pod of one role: include with (dict "root" $ "role" "capture").
*/}}
{{- define "cdcd.pod" -}}
{{- $root := .root -}}
metadata:
  labels:
    app.kubernetes.io/name: {{ $root.Chart.Name }}
    app.kubernetes.io/instance: {{ $root.Release.Name }}
    app.kubernetes.io/component: {{ .role }}
  annotations:
    checksum/config: {{ $root.Values.config | sha256sum }}
    checksum/secret: {{ toYaml $root.Values.secret | sha256sum }}
    {{- with $root.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    seccompProfile: {type: RuntimeDefault}
  terminationGracePeriodSeconds: 30
  containers:
    - name: cdcd
      image: "{{ $root.Values.image.repository }}:{{ default $root.Chart.AppVersion $root.Values.image.tag }}"
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args: ["run", "--config", "/etc/cdcd/cdcd.yaml", "--role", {{ .role | quote }}]
      envFrom:
        - secretRef:
            name: {{ include "cdcd.secretName" $root }}
      ports:
        - name: http
          containerPort: {{ $root.Values.httpPort }}
      livenessProbe:
        httpGet: {path: /healthz, port: http}
        periodSeconds: 10
        failureThreshold: 3
      readinessProbe:
        httpGet: {path: /readyz, port: http}
        periodSeconds: 5
        failureThreshold: 2
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: {drop: [ALL]}
      resources:
        {{- toYaml (index $root.Values .role).resources | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/cdcd
          readOnly: true
        - name: state
          mountPath: /var/lib/cdcd
  volumes:
    - name: config
      configMap:
        name: {{ include "cdcd.fullname" $root }}
    - name: state
      emptyDir: {}
  {{- with $root.Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
