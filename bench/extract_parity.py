"""Parity of rl-extract with PyTorch on a full ResNet-50 and real JPEGs.

Usage (from the repository root, Debian's python3 with torch, torchvision,
numpy, PIL):
  /usr/bin/python3 bench/extract_parity.py BIN/rl-extract DIR IMAGE...

Saves a torchvision ResNet-50 (random weights, batch-norm statistics and
affine parameters randomised so eval mode matters) as a relloc checkpoint
(man/rl-ckpt.5), runs rl-extract with the svm preset on the images, and
computes the same Feature1-5 and gap in PyTorch, float64, from PIL-decoded
images through torchvision's Resize(256), Resize((224, 224)), ToTensor,
Normalize, then AvgPool2d(count_include_pad=True) and view(N, -1). Prints
max |ours - torch| / max |torch| per feature and exits 1 above 1e-4.
"""
import os
import subprocess
import sys

import numpy as np
import torch
import torchvision
import torchvision.transforms as T
from PIL import Image

# the one safetensors writer of the project's Python scripts
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'tests', 'ref'))
from safetensors_np import save_safetensors  # noqa: E402

SPECS = [(10, 10, 4), (16, 8, 0), (13, 5, 0), (8, 3, 0), (6, 1, 0)]
TOL = 1e-4


def main():
    exe, d, images = sys.argv[1], sys.argv[2], sys.argv[3:]
    torch.manual_seed(0)
    m = torchvision.models.resnet50()
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.1, 0.1)
    m.eval()
    sd = {k: v.numpy() for k, v in m.state_dict().items()
          if not k.startswith('fc.')}
    save_safetensors(d + '/r50.safetensors', sd, {'arch': 'resnet50'})
    with open(d + '/parity.txt', 'w') as f:
        for i, p in enumerate(images):
            f.write('%s %d\n' % (p, i))
    subprocess.run([exe, '-m', d + '/r50.safetensors', '-o', d, '-p',
                    'parity', d + '/parity.txt'], check=True)

    tf = T.Compose([T.Resize(256), T.Resize((224, 224)), T.ToTensor(),
                    T.Normalize([0.485, 0.456, 0.406],
                                [0.229, 0.224, 0.225])])
    x = torch.stack([tf(Image.open(p).convert('RGB')) for p in images])
    m = m.double()
    with torch.no_grad():
        y = m.relu(m.bn1(m.conv1(x.double())))
        outs = [y]
        y = m.maxpool(y)
        for layer in (m.layer1, m.layer2, m.layer3, m.layer4):
            y = layer(y)
            outs.append(y)
    ref = [torch.nn.AvgPool2d(*s)(o).reshape(len(images), -1).numpy()
           for o, s in zip(outs, SPECS)]
    ref.append(outs[4].mean((2, 3)).numpy())
    worst = 0
    line = []
    for name, r in zip(['feat1', 'feat2', 'feat3', 'feat4', 'feat5', 'gap'],
                       ref):
        ours = np.load('%s/parity_%s.npy' % (d, name))
        rel = np.abs(ours - r).max() / np.abs(r).max()
        worst = max(worst, rel)
        line.append('%s %.2g' % (name, rel))
    print('parity with PyTorch (ResNet-50, %d JPEGs, svm preset, PIL decode,'
          ' float64): max rel diff %s: %s' % (len(images), ', '.join(line),
                                              'ok' if worst <= TOL else
                                              'FAIL'))
    return 0 if worst <= TOL else 1


if __name__ == '__main__':
    sys.exit(main())
