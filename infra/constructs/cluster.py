"""The EKS cluster and its Nitro Enclave nodes, with the ``eks/ipoc`` chart installed.

The managed node group's launch template turns Nitro Enclaves on
(``EnclaveOptions.Enabled``); its user data reserves hugepages, installs and
sizes the Nitro Enclaves allocator, and the group labels its nodes the way the
device plugin and the runtime pods expect. The chart's runtime Service gets a
Network Load Balancer; its DNS name is read back (``KubernetesObjectValue``) and
becomes the host of every instance's ``veracruz_server_url``.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnResource, Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as assets
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk.lambda_layer_kubectl_v35 import KubectlV35Layer
from constructs import Construct

from infra.config import DeploymentConfig
from infra.constructs.proxy_image import ProxyImage

CHART = Path(__file__).resolve().parents[2] / "eks" / "ipoc"
RELEASE_NAMESPACE = "ipoc-system"
RUNTIME_NAMESPACE = "veracruz"
RUNTIME_SERVICE = "veracruz-nitro-server"
PROXY_SERVICE = "veracruz-nitro-proxy"
PROXY_PORT = 3010
PROXY_SERVICE_ACCOUNT = "veracruz-proxy"
# The proxy's own namespace: the VaaS group cannot create pods there, so it cannot borrow the proxy's
# service account (and with it the Pod Identity role that reads the CA key).
PROXY_NAMESPACE = "veracruz-proxy"
VAAS_GROUP = "ipoc-vaas"
NODE_LABELS = {"smarter-device-manager": "enabled", "enclave.example.com/type": "nitro"}


def node_user_data(config: DeploymentConfig) -> str:
    """The Nitro node's boot script (runs before kubelet registers the node's hugepages)."""
    return f"""#!/bin/bash
set -euo pipefail
# Hugepages for the enclaves and the runtime pods (resources hugepages-2Mi and hugepages-1Gi).
cat > /etc/sysctl.d/99-ipoc-hugepages.conf <<'EOF'
vm.nr_hugepages={config.hugepages_2mi}
EOF
sysctl -w vm.nr_hugepages={config.hugepages_2mi}
echo {config.hugepages_1gi} > /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages
# The Nitro Enclaves allocator reserves the enclaves' memory and CPUs at boot.
dnf install -y aws-nitro-enclaves-cli
cat > /etc/nitro_enclaves/allocator.yaml <<'EOF'
---
memory_mib: {config.enclave_memory_mib}
cpu_count: {config.enclave_cpus}
EOF
systemctl enable --now nitro-enclaves-allocator.service
# kubelet reads the hugepage pools when it starts: restart it if it already runs.
systemctl try-restart kubelet || true
"""


class EnclaveCluster(Construct):
    """``cluster``, ``nodegroup``, ``chart`` and ``runtime_host`` (the NLB's DNS name, a token)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: DeploymentConfig,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        proxy_ca_certificate: secretsmanager.ISecret,
        proxy_ca_key: secretsmanager.ISecret,
        chart_path: Path = CHART,
    ) -> None:
        super().__init__(scope, id)
        secrets_key = kms.Key(
            self, "SecretsKey", enable_key_rotation=True, description="i-PoC EKS secrets envelope encryption"
        )
        endpoint = (
            eks.EndpointAccess.PUBLIC_AND_PRIVATE.only_from(*config.cluster_public_access_cidrs)
            if config.cluster_public_access_cidrs
            else eks.EndpointAccess.PRIVATE
        )
        self.cluster = eks.Cluster(
            self,
            "Cluster",
            version=eks.KubernetesVersion.of(config.kubernetes_version),
            vpc=vpc,
            vpc_subnets=[subnets],
            endpoint_access=endpoint,
            default_capacity=0,
            default_capacity_type=eks.DefaultCapacityType.NODEGROUP,
            secrets_encryption_key=secrets_key,
            cluster_logging=[
                eks.ClusterLoggingTypes.API,
                eks.ClusterLoggingTypes.AUDIT,
                eks.ClusterLoggingTypes.AUTHENTICATOR,
                eks.ClusterLoggingTypes.CONTROLLER_MANAGER,
                eks.ClusterLoggingTypes.SCHEDULER,
            ],
            kubectl_provider_options=eks.KubectlProviderOptions(
                kubectl_layer=KubectlV35Layer(self, "KubectlLayer"),
                private_subnets=vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnets,
            ),
        )
        user_data = ec2.MultipartUserData()
        user_data.add_part(ec2.MultipartBody.from_user_data(ec2.UserData.custom(node_user_data(config))))
        self.launch_template = ec2.LaunchTemplate(
            self,
            "NitroNodes",
            nitro_enclave_enabled=True,
            require_imdsv2=True,
            http_put_response_hop_limit=2,
            user_data=user_data,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",
                    volume=ec2.BlockDeviceVolume.ebs(50, encrypted=True, volume_type=ec2.EbsDeviceVolumeType.GP3),
                )
            ],
        )
        self.nodegroup = self.cluster.add_nodegroup_capacity(
            "Nitro",
            instance_types=[ec2.InstanceType(t) for t in config.nitro_instance_types],
            ami_type=eks.NodegroupAmiType.AL2023_X86_64_STANDARD,
            min_size=config.nodes_min,
            desired_size=config.nodes_desired,
            max_size=config.nodes_max,
            labels=NODE_LABELS,
            subnets=subnets,
            launch_template_spec=eks.LaunchTemplateSpec(
                id=self.launch_template.launch_template_id or "", version=self.launch_template.latest_version_number
            ),
        )
        # aws_eks_v2's generated Cluster class leaves out ICluster's kubectl_provider_options (jsii typing);
        # at run time it is an ICluster.
        as_icluster: eks.ICluster = self.cluster  # type: ignore[assignment]
        # The proxy's init container reads the CA from Secrets Manager as its service account (EKS Pod Identity).
        eks.Addon(self, "PodIdentityAgent", cluster=as_icluster, addon_name="eks-pod-identity-agent")
        # The VPC CNI with its network policy agent: without it the chart's NetworkPolicies are ignored.
        # EKS installs the CNI unmanaged at cluster creation; OVERWRITE lets the managed add-on take it over.
        cni = eks.Addon(
            self,
            "VpcCni",
            cluster=as_icluster,
            addon_name="vpc-cni",
            configuration_values={"enableNetworkPolicy": "true"},
        )
        addon = cni.node.default_child
        assert isinstance(addon, CfnResource)  # the add-on's AWS::EKS::Addon
        addon.add_property_override("ResolveConflicts", "OVERWRITE")
        proxy_role = iam.Role(
            self,
            "ProxyRole",
            assumed_by=iam.ServicePrincipal("pods.eks.amazonaws.com").with_session_tags(),
            description="i-PoC proxy attestation service: reads the proxy CA",
        )
        proxy_ca_certificate.grant_read(proxy_role)
        proxy_ca_key.grant_read(proxy_role)
        eks.CfnPodIdentityAssociation(
            self,
            "ProxyIdentity",
            cluster_name=self.cluster.cluster_name,
            namespace=PROXY_NAMESPACE,
            service_account=PROXY_SERVICE_ACCOUNT,
            role_arn=proxy_role.role_arn,
        )
        self.chart = self.cluster.add_helm_chart(
            "Ipoc",
            chart_asset=assets.Asset(self, "ChartAsset", path=str(chart_path)),
            release="ipoc",
            namespace=RELEASE_NAMESPACE,
            create_namespace=True,
            wait=False,
            values={
                "runtimeNamespace": RUNTIME_NAMESPACE,
                "runtimeImage": config.runtime_image,
                "ports": {"first": config.port_min, "last": config.port_max},
                "vaasGroup": VAAS_GROUP,
                "proxy": {
                    # ipoc:proxy=veracruz switches back to the runtime image's original (unchecking) proxy.
                    "implementation": config.proxy,
                    "image": config.runtime_image
                    if config.proxy == "veracruz"
                    else ProxyImage(self, "ProxyImage").image_uri,
                    "pcr0AllowList": list(config.pcr0_allow_list),
                    "port": PROXY_PORT,
                    "serviceAccount": PROXY_SERVICE_ACCOUNT,
                    "namespace": PROXY_NAMESPACE,
                    "ca": {
                        "region": Stack.of(self).region,
                        "certificateSecretArn": proxy_ca_certificate.secret_arn,
                        "keySecretArn": proxy_ca_key.secret_arn,
                    },
                },
            },
        )
        self.chart.node.add_dependency(self.nodegroup)
        host = eks.KubernetesObjectValue(
            self,
            "RuntimeHost",
            cluster=as_icluster,
            object_type="service",
            object_name=RUNTIME_SERVICE,
            object_namespace=RUNTIME_NAMESPACE,
            json_path=".status.loadBalancer.ingress[0].hostname",
            timeout=Duration.minutes(10),
        )
        host.node.add_dependency(self.chart)
        self.runtime_host = host.value
        self.proxy_url = f"{PROXY_SERVICE}.{PROXY_NAMESPACE}:{PROXY_PORT}"  # runtime pods resolve it across namespaces

    def grant_runtime_management(self, role: iam.IRole, id: str) -> None:
        """Map ``role`` to the chart's VaaS group: runtime objects in one namespace, nothing else."""
        eks.CfnAccessEntry(
            self,
            id,
            cluster_name=self.cluster.cluster_name,
            principal_arn=role.role_arn,
            kubernetes_groups=[VAAS_GROUP],
            type="STANDARD",
        )

    def allow_api_from(self, peer: ec2.ISecurityGroup) -> None:
        """HTTPS from ``peer`` into the cluster's security groups: the API endpoint is private, so a
        Lambda outside those groups reaches it only through this rule (without it, every call times out)."""
        self.cluster.connections.allow_from(peer, ec2.Port.tcp(443), "i-PoC control-plane Lambdas to the EKS API")
